"""Writes of partner data sharing: consents to third-party provision, exports to a partner, imports of a partner's
list, and the housekeeping of expired files. Every write validates first, runs in a transaction and is audited; every
transfer is logged (``Transfer``: who, when, fields, how many).

The partners app sits at the top of the layers (beside web and api): it reads customers and loyalty and calls the
ingest pipeline's entry points (``ingest.services.create_job`` / ``run_job``) for a partner's list."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import secrets
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyzipper
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit
from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit, Role
from dangol.core.phones import try_normalize_phone
from dangol.customers.models import ContactPoint, Customer, Interaction
from dangol.customers.selectors import customers_for

from .fields import FIELDS
from .models import (
    Agreement,
    ConsentMethod,
    Direction,
    PartnerOrigin,
    ThirdPartyConsent,
    Transfer,
    TransferStatus,
)

MAX_EVIDENCE = 300
# Headers of a partner list's consent column (the partner collected the consent to provide the data to us).
CONSENT_HEADERS = {"제3자제공동의", "제3자제공", "제3자동의", "제공동의", "개인정보제3자제공동의", "thirdpartyconsent",
                   "consent", "third_party_consent", "consenttoprovide"}
YES = {"y", "yes", "1", "o", "동의", "true", "예", "t"}


def may_share(user) -> bool:
    """Admins and managers share data with partners (staff do not)."""
    return bool(user is not None and user.is_authenticated and (user.sees_all_units or user.role == Role.MANAGER))


def agreements_for(user) -> QuerySet[Agreement]:
    """Admins: every agreement. Managers: those of their own units (group-wide ones are the admins')."""
    qs = Agreement.objects.select_related("partner", "unit")
    if user.sees_all_units:
        return qs
    if not may_share(user):
        return qs.none()
    from dangol.core.selectors import units_for

    return qs.filter(unit__in=units_for(user))


def _check_agreement(agreement: Agreement, direction: str, now: dt.datetime) -> None:
    if agreement.direction != direction:
        raise ValidationError({"agreement": [_("This agreement does not allow this direction of transfer.")]})
    if not agreement.partner.is_active:
        raise ValidationError({"agreement": [_("The partner is not active.")]})
    if not agreement.valid_from <= now < agreement.valid_until:
        raise ValidationError({"agreement": [_("The agreement is not in force (valid %(start)s – %(end)s).") % {
            "start": agreement.valid_from.date(), "end": agreement.valid_until.date()}]})


def _check_user(actor: Actor, agreement: Agreement) -> None:
    if actor.user is None:
        return  # the command line or the schedule
    if not may_share(actor.user) or not agreements_for(actor.user).filter(pk=agreement.pk).exists():
        raise PermissionDenied(_("Only an admin, or a manager of the agreement's business unit, may share data with a partner."))


# --- consents ------------------------------------------------------------------------------------------------------------

@transaction.atomic
def record_consent(*, actor: Actor, customer: Customer, agreement: Agreement, granted: bool, method: str,
                   evidence: str = "", unit: BusinessUnit | None = None, at: dt.datetime | None = None) -> ThirdPartyConsent:
    """A customer's decision about the provision of their data under ``agreement`` (naming its partner and purpose),
    with its evidence: when, how, the notice version and text shown, who recorded it."""
    now = timezone.now()
    at = at or now
    errors: dict[str, list[str]] = {}
    if type(granted) is not bool:
        errors["granted"] = [_("Say whether the customer agreed or refused.")]
    if method not in ConsentMethod.values or method == ConsentMethod.PARTNER_FILE:
        errors["method"] = [_("Choose how the customer gave the answer.")]
    if timezone.is_naive(at) or at > now + dt.timedelta(minutes=5):
        errors["at"] = [_("A consent is recorded when it was given, not in the future.")]
    evidence = " ".join((evidence or "").split())
    if len(evidence) > MAX_EVIDENCE:
        errors["evidence"] = [_("Evidence has at most %(n)s characters.") % {"n": MAX_EVIDENCE}]
    if agreement.direction != Direction.TO_PARTNER:
        errors["agreement"] = [_("Consents to this agreement come with the partner's list.")]
    elif granted is True and not agreement.is_valid_at(at):
        errors["agreement"] = [_("The agreement is not in force: a consent to it cannot be given now.")]
    if customer.erased_at is not None or customer.merged_into_id is not None:
        errors["customer"] = [_("This customer record cannot take a consent.")]
    if errors:
        raise ValidationError(errors)
    consent = ThirdPartyConsent.objects.create(
        customer=customer, agreement=agreement, partner=agreement.partner, purpose=agreement.purpose, granted=granted,
        at=at, method=method, notice_version=agreement.notice_version, notice_text=agreement.notice_text,
        evidence=evidence, unit=unit, recorded_by=actor.user)
    text = (_("Consent to provide data to %(partner)s (%(purpose)s): given") if granted else
            _("Consent to provide data to %(partner)s (%(purpose)s): refused or withdrawn"))
    Interaction.objects.create(customer=customer, kind="note", occurred_at=at, unit=unit, created_by=actor.user,
                               summary=(text % {"partner": agreement.partner.name, "purpose": agreement.purpose})[:300],
                               ref_type="partners.thirdpartyconsent", ref_id=consent.pk)
    audit.record(actor=actor, action="partners.consent", obj=customer, fields=["third_party_consent"])
    return consent


def latest_consent_granted(agreement: Agreement):
    """A subquery: the latest decision of the outer customer about ``agreement`` (True, False or NULL)."""
    return Subquery(ThirdPartyConsent.objects.filter(customer=OuterRef("pk"), agreement=agreement)
                    .order_by("-at", "-id").values("granted")[:1])


def consenting_customers(agreement: Agreement, user=None) -> QuerySet[Customer]:
    """Customers whose latest decision about this agreement is a consent, who are neither erased, merged nor
    suspended, within the agreement's unit and the user's scope. One query."""
    qs = customers_for(user) if user is not None else Customer.objects.all()
    qs = qs.filter(merged_into__isnull=True, erased_at__isnull=True, processing_suspended=False)
    if agreement.unit_id:
        qs = qs.filter(memberships__unit_id=agreement.unit_id)
    return qs.annotate(tpc=latest_consent_granted(agreement)).filter(tpc=True)


# --- export to a partner ---------------------------------------------------------------------------------------------------

@dataclass
class ExportOutcome:
    transfer: Transfer
    password: str  # shown once; never stored
    token: str  # the download link's secret; only its hash is stored


def _exports_dir() -> Path:
    path = Path(settings.DATA_DIR) / "partners" / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def export_hours() -> int:
    return int(getattr(settings, "PARTNER_EXPORT_HOURS", 72))


def export_to_partner(*, actor: Actor, agreement: Agreement, fields: list[str] | None = None,
                      now: dt.datetime | None = None) -> ExportOutcome:
    """The consenting customers' agreed fields as a CSV inside an AES-256 encrypted zip, kept until it expires.

    Refused without a transfer: fields the agreement does not allow, an agreement out of force or of the other
    direction, a user who may not share, no consenting customer."""
    now = now or timezone.now()
    _check_user(actor, agreement)
    _check_agreement(agreement, Direction.TO_PARTNER, now)
    fields = list(fields or agreement.fields)
    if not fields:
        raise ValidationError({"fields": [_("Choose at least one field.")]})
    not_agreed = [f for f in fields if f not in agreement.fields or f not in FIELDS]
    if not_agreed:
        raise ValidationError({"fields": [_("Not allowed by the agreement: %(fields)s.") % {"fields": ", ".join(not_agreed)}]})
    fields = [f for f in FIELDS if f in fields]  # the catalogue's order, each once
    customers = consenting_customers(agreement, actor.user)
    ids = list(customers.values_list("pk", flat=True))
    if not ids:
        raise ValidationError({"agreement": [_("No customer has consented to this provision: nothing to export.")]})
    body = _csv(ids, fields)
    password = secrets.token_urlsafe(12)
    token = secrets.token_urlsafe(32)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    name = f"dangol-{agreement.partner.pk}-{agreement.pk}-{stamp}.zip"
    path = _exports_dir() / f"{secrets.token_hex(16)}.zip"
    buffer = io.BytesIO()
    with pyzipper.AESZipFile(buffer, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as archive:
        archive.setpassword(password.encode())
        archive.setencryption(pyzipper.WZ_AES, nbits=256)
        archive.writestr(name.replace(".zip", ".csv"), body)
    data = buffer.getvalue()
    path.write_bytes(data)
    try:
        with transaction.atomic():
            transfer = Transfer.objects.create(
                agreement=agreement, partner=agreement.partner, direction=Direction.TO_PARTNER, status=TransferStatus.READY,
                at=now, by=actor.user, fields=fields, customers=len(ids), file_name=name, path=str(path),
                sha256=hashlib.sha256(data).hexdigest(), token_hash=_hash(token),
                expires_at=now + dt.timedelta(hours=export_hours()))
            audit.record(actor=actor, action="partners.export", obj=transfer, fields=fields)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return ExportOutcome(transfer=transfer, password=password, token=token)


def _csv(ids: list[int], fields: list[str]) -> bytes:
    """UTF-8 with a byte-order mark (Excel reads the Korean), one row per customer, in one query per chunk of ids."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([str(FIELDS[f][0]) for f in fields])
    columns = ", ".join(FIELDS[f][1] for f in fields)
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 5000):
            part = ids[start:start + 5000]
            cursor.execute(f"SELECT {columns} FROM customers_customer c WHERE c.id IN ({', '.join(['%s'] * len(part))}) "
                           f"ORDER BY c.id", part)
            writer.writerows(_spreadsheet_safe(row) for row in cursor.fetchall())
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _spreadsheet_safe(row) -> list:
    """A value starting with = + - @ is not run as a formula by a spreadsheet (phones keep their +82)."""
    safe = []
    for value in row:
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.timezone.utc).isoformat()
        text = "" if value is None else str(value)
        if text[:1] in ("=", "-", "@") or (text[:1] == "+" and not text[1:].isdigit()):
            text = "'" + text
        safe.append(text)
    return safe


@transaction.atomic
def download(token: str, *, actor: Actor, now: dt.datetime | None = None) -> Transfer | None:
    """The export behind a download link, counted and audited; None when unknown or expired (the file of an expired
    export is deleted here if the hourly job has not done it yet)."""
    now = now or timezone.now()
    if not token or len(token) > 100:
        return None
    transfer = Transfer.objects.select_for_update().filter(token_hash=_hash(token), direction=Direction.TO_PARTNER).first()
    if transfer is None:
        return None
    if transfer.status != TransferStatus.READY or (transfer.expires_at and transfer.expires_at <= now):
        _expire(transfer)
        return None
    Transfer.objects.filter(pk=transfer.pk).update(downloads=transfer.downloads + 1, last_download_at=now)
    audit.record(actor=actor, action="partners.download", obj=transfer, fields=transfer.fields)
    return transfer


def _expire(transfer: Transfer) -> None:
    if transfer.path:
        Path(transfer.path).unlink(missing_ok=True)
    if transfer.status == TransferStatus.READY:
        Transfer.objects.filter(pk=transfer.pk).update(status=TransferStatus.EXPIRED, path="")


def purge_expired_exports(*, now: dt.datetime | None = None) -> int:
    """Delete the files of expired exports (the log stays)."""
    now = now or timezone.now()
    expired = list(Transfer.objects.filter(status=TransferStatus.READY, expires_at__lte=now))
    for transfer in expired:
        _expire(transfer)
    return len(expired)


# --- import of a partner's list ---------------------------------------------------------------------------------------------

def _consent_column(headers: list[str]) -> str | None:
    for header in headers:
        key = "".join(header.split()).lower().replace("_", "").replace("-", "")
        if key in {h.replace("_", "") for h in CONSENT_HEADERS}:
            return header
    return None


@dataclass
class ImportOutcome:
    transfer: Transfer
    job: object  # ingest.ImportJob
    refused_without_consent: int


def import_from_partner(*, actor: Actor, agreement: Agreement, path: str | Path, original_name: str = "",
                        now: dt.datetime | None = None) -> ImportOutcome:
    """A partner's customer list through the ingest pipeline, into the agreement's business unit.

    The file needs a consent column (제3자제공동의 / consent: Y, 동의, 1…): rows without a yes are left out before the
    pipeline sees them. The customers it created or matched are marked with their origin (the partner and the
    transfer) and their consent is recorded with the file and row as evidence."""
    from dangol.ingest import services as ingest
    from dangol.ingest.models import JobStatus
    from dangol.ingest.reader import UnreadableFile, read_table

    now = now or timezone.now()
    _check_user(actor, agreement)
    _check_agreement(agreement, Direction.FROM_PARTNER, now)
    original_name = (original_name or Path(path).name)[:150]
    try:
        table = read_table(path)
    except UnreadableFile as exc:
        raise ValidationError({"file": [str(exc)]}) from exc
    column = _consent_column(table.headers)
    if column is None:
        raise ValidationError({"file": [_("The partner's file has no consent column (제3자제공동의 or consent): "
                                          "nothing can be imported without the customers' consent.")]})
    frame = table.frame
    consented = frame.filter(pl.col(column).str.strip_chars().str.to_lowercase().is_in(list(YES)))
    refused = frame.height - consented.height
    if consented.height == 0:
        raise ValidationError({"file": [_("No row of the file says the customer consented: nothing to import.")]})
    kept = [h for h in table.headers if h != column]
    filtered = ingest.upload_dir() / f"partner-{secrets.token_hex(8)}.csv"
    consented.select(kept).write_csv(filtered)
    rows = consented.get_column("__row").to_list()
    # Customers above this id after the import are the ones it created (the pipeline allocates ids above the maximum).
    newest_before = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    job = ingest.create_job(actor=actor, unit=agreement.unit, kind="customers", path=filtered,
                            original_name=f"{agreement.partner.name}: {original_name}"[:200])
    job = ingest.run_job(job, actor=actor)
    with transaction.atomic():
        transfer = Transfer.objects.create(
            agreement=agreement, partner=agreement.partner, direction=Direction.FROM_PARTNER,
            status=TransferStatus.DONE if job.status == JobStatus.DONE else TransferStatus.FAILED, at=now, by=actor.user,
            fields=sorted(set((job.mapping or {}).values())), customers=job.created + job.updated + job.unchanged,
            rejected=refused + job.rejected, file_name=original_name, import_job=job,
            note=(job.error or "")[:300])
        if job.status == JobStatus.DONE:
            _mark_origin(transfer, agreement, consented, kept, rows, original_name, actor, now, newest_before)
        audit.record(actor=actor, action="partners.import", obj=transfer, fields=transfer.fields)
    return ImportOutcome(transfer=transfer, job=job, refused_without_consent=refused)


def _mark_origin(transfer: Transfer, agreement: Agreement, consented: pl.DataFrame, headers: list[str], rows: list[int],
                 original_name: str, actor: Actor, now: dt.datetime, newest_before: int) -> None:
    """The customers of the consenting rows, found by their phone or email as the pipeline stored them; one origin
    row and one consent (evidence: the file and row) each, written in bulk."""
    from dangol.ingest.fields import guess_mapping

    mapping = guess_mapping(headers, "customers")
    phone_col = next((h for h, k in mapping.items() if k == "phone"), None)
    email_col = next((h for h, k in mapping.items() if k == "email"), None)
    wanted: dict[str, int] = {}
    for index in range(consented.height):
        for col, kind in ((phone_col, "phone"), (email_col, "email")):
            if col is None:
                continue
            raw = (consented[index, col] or "").strip()
            value = try_normalize_phone(raw) if kind == "phone" else raw.lower()
            if value:
                wanted.setdefault(f"{kind}:{value}", rows[index])
    found: dict[int, int] = {}
    values = list(wanted)
    for start in range(0, len(values), 5000):
        part = values[start:start + 5000]
        for kind in ("phone", "email"):
            keys = [v.split(":", 1)[1] for v in part if v.startswith(kind + ":")]
            for customer_id, value in ContactPoint.objects.filter(kind=kind, value__in=keys,
                                                                  customer__merged_into__isnull=True).values_list("customer_id", "value"):
                found.setdefault(customer_id, wanted[f"{kind}:{value}"])
    created = {c for c in found if c > newest_before}
    PartnerOrigin.objects.bulk_create([PartnerOrigin(customer_id=c, partner=agreement.partner, transfer=transfer,
                                                     created=c in created, at=now) for c in sorted(found)])
    ThirdPartyConsent.objects.bulk_create([ThirdPartyConsent(
        customer_id=c, agreement=agreement, partner=agreement.partner, purpose=agreement.purpose, granted=True, at=now,
        method=ConsentMethod.PARTNER_FILE, notice_version=agreement.notice_version, notice_text=agreement.notice_text,
        evidence=f"{original_name}, row {row}, transfer #{transfer.pk}"[:MAX_EVIDENCE], unit=agreement.unit,
        recorded_by=actor.user) for c, row in sorted(found.items())])
    Interaction.objects.bulk_create([Interaction(
        customer_id=c, kind="note", occurred_at=now, unit=agreement.unit, created_by=actor.user,
        summary=(_("From the list of %(partner)s (%(purpose)s)") % {"partner": agreement.partner.name,
                                                                     "purpose": agreement.purpose})[:300],
        ref_type="partners.transfer", ref_id=transfer.pk) for c in sorted(found)])


# --- reactions -------------------------------------------------------------------------------------------------------------

def on_customer_erased(*, customer_id: int, **kwargs) -> None:
    """The erased customer's consent evidence (a form number, a file row, a call id) goes; the decisions stay, without
    it, as the record that data was or was not provided."""
    ThirdPartyConsent.objects.filter(customer_id=customer_id).exclude(evidence="").update(evidence="")


def on_customers_merged(*, survivor, merged, merge, moved: dict) -> None:
    """The merged record's consents and origins move to the survivor (one query when there are none)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 'c', id FROM {ThirdPartyConsent._meta.db_table} WHERE customer_id = %s UNION ALL "
                       f"SELECT 'o', id FROM {PartnerOrigin._meta.db_table} WHERE customer_id = %s", [merged.pk, merged.pk])
        rows = cursor.fetchall()
    if not rows:
        return
    consents = sorted(pk for kind, pk in rows if kind == "c")
    origins = [pk for kind, pk in rows if kind == "o"]
    if origins:  # one origin per transfer and customer: the survivor's own stays, the merged record's duplicate too
        shared = PartnerOrigin.objects.filter(customer_id=survivor.pk).values("transfer")
        origins = sorted(PartnerOrigin.objects.filter(pk__in=origins).exclude(transfer__in=shared).values_list("pk", flat=True))
    if consents:
        ThirdPartyConsent.objects.filter(pk__in=consents).update(customer_id=survivor.pk)
        moved["partners_consents"] = consents
    if origins:
        PartnerOrigin.objects.filter(pk__in=origins).update(customer_id=survivor.pk)
        moved["partners_origins"] = origins


def on_customers_unmerged(*, survivor, merged, merge, moved: dict) -> None:
    if moved.get("partners_consents"):
        ThirdPartyConsent.objects.filter(pk__in=moved["partners_consents"]).update(customer_id=merged.pk)
    if moved.get("partners_origins"):
        PartnerOrigin.objects.filter(pk__in=moved["partners_origins"]).update(customer_id=merged.pk)


def customer_consents(customer: Customer, user) -> list[dict]:
    """Per agreement to provide data of the user's units (and the group's): this customer's latest decision, or None.
    Staff record consents at the counter too; only managers and admins export."""
    from dangol.core.selectors import units_for

    agreements = list(Agreement.objects.filter(direction=Direction.TO_PARTNER).select_related("partner", "unit")
                      .filter(Q(unit__isnull=True) | Q(unit__in=units_for(user))).order_by("partner__name", "title"))
    latest: dict[int, ThirdPartyConsent] = {}
    for consent in ThirdPartyConsent.objects.filter(customer=customer, agreement__in=agreements).order_by("agreement_id", "-at", "-id"):
        latest.setdefault(consent.agreement_id, consent)
    return [{"agreement": a, "latest": latest.get(a.pk)} for a in agreements]


def customer_origins(customer: Customer) -> list[PartnerOrigin]:
    return list(PartnerOrigin.objects.filter(customer=customer).select_related("partner", "transfer")[:10])
