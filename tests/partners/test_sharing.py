"""Partner data sharing: consents with evidence, exports only to consenting customers with the agreed fields in an
AES-encrypted zip that expires, every transfer logged; imports of a partner's list through the ingest pipeline with
only the consenting rows, marked with their origin; bad input, no-consent and permission cases; erasure and merges."""
from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
import pyzipper
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone, translation

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.models import Customer, Interaction
from dangol.partners import services
from dangol.partners.models import (
    Agreement,
    ConsentMethod,
    Direction,
    Partner,
    PartnerKind,
    PartnerOrigin,
    ThirdPartyConsent,
    Transfer,
    TransferStatus,
)


@pytest.fixture(autouse=True)
def _english(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    with translation.override("en"):
        yield


@pytest.fixture
def card_company(db):
    return Partner.objects.create(name="Hanbit Card", kind=PartnerKind.CARD)


@pytest.fixture
def outbound(card_company, units):
    now = timezone.now()
    return Agreement.objects.create(partner=card_company, title="Co-branded card", purpose="co-branded card benefits",
                                    direction=Direction.TO_PARTNER, fields=["name", "phone", "member_number"],
                                    unit=units["seoul-hotel"], valid_from=now - dt.timedelta(days=30),
                                    valid_until=now + dt.timedelta(days=365), notice_version="2026-11",
                                    notice_text="Recipient: Hanbit Card. Purpose: co-branded card benefits.")


@pytest.fixture
def inbound(card_company, units):
    now = timezone.now()
    return Agreement.objects.create(partner=card_company, title="Card members to the hotel", purpose="hotel offers",
                                    direction=Direction.FROM_PARTNER, fields=["name", "phone"], unit=units["seoul-hotel"],
                                    valid_from=now - dt.timedelta(days=1), valid_until=now + dt.timedelta(days=30),
                                    notice_version="HC-3")


def consent(customer, agreement, granted=True, at=None, user=None):
    return services.record_consent(actor=Actor(user=user), customer=customer, agreement=agreement, granted=granted,
                                   method=ConsentMethod.PAPER, evidence="form 0001", at=at)


def unzip(path: str, password: str) -> list[list[str]]:
    with pyzipper.AESZipFile(path) as archive:
        archive.setpassword(password.encode())
        [name] = archive.namelist()
        text = archive.read(name).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


# --- consents ------------------------------------------------------------------------------------------------------------

def test_a_consent_records_its_evidence_and_the_latest_decision_counts(outbound, make_customer, mina):
    kim = make_customer("seoul-hotel", name="김동의")
    first = consent(kim, outbound, user=mina, at=timezone.now() - dt.timedelta(hours=2))
    assert (first.partner, first.purpose, first.notice_version, first.method, first.evidence, first.recorded_by) == (
        outbound.partner, "co-branded card benefits", "2026-11", "paper", "form 0001", mina)
    assert first.notice_text.startswith("Recipient: Hanbit Card")
    assert list(services.consenting_customers(outbound)) == [kim]
    consent(kim, outbound, granted=False, user=mina)  # withdrawn
    assert not services.consenting_customers(outbound).exists()
    assert Interaction.objects.filter(customer=kim, ref_type="partners.thirdpartyconsent").count() == 2
    assert AuditEvent.objects.filter(action="partners.consent", actor=mina).count() == 2
    with pytest.raises(ValueError):
        first.save()  # immutable


@pytest.mark.parametrize("change, field", [
    ({"method": "telepathy"}, "method"),
    ({"method": ConsentMethod.PARTNER_FILE}, "method"),
    ({"granted": "yes"}, "granted"),
    ({"at": "future"}, "at"),
    ({"evidence": "x" * 301}, "evidence"),
])
def test_a_bad_consent_is_refused_with_the_reason(outbound, make_customer, change, field):
    kim = make_customer("seoul-hotel")
    values = {"granted": True, "method": ConsentMethod.PAPER, "evidence": "", "at": None}
    values.update(change)
    if values["at"] == "future":
        values["at"] = timezone.now() + dt.timedelta(days=1)
    with pytest.raises(ValidationError) as caught:
        services.record_consent(actor=Actor.system("test"), customer=kim, agreement=outbound, **values)
    assert field in caught.value.message_dict
    assert not ThirdPartyConsent.objects.exists()


def test_no_consent_to_an_agreement_out_of_force_or_of_the_other_direction(outbound, inbound, make_customer):
    kim = make_customer("seoul-hotel")
    with pytest.raises(ValidationError) as caught:
        consent(kim, inbound)
    assert "agreement" in caught.value.message_dict
    Agreement.objects.filter(pk=outbound.pk).update(valid_until=timezone.now() - dt.timedelta(days=1))
    outbound.refresh_from_db()
    with pytest.raises(ValidationError):
        consent(kim, outbound)
    services.record_consent(actor=Actor.system("test"), customer=kim, agreement=outbound, granted=False,
                            method=ConsentMethod.PHONE)  # a refusal is always recorded


# --- exports -------------------------------------------------------------------------------------------------------------

@pytest.fixture
def audience(outbound, make_customer, alice):
    from dangol.loyalty.services import ensure_account

    yes = make_customer("seoul-hotel", name="김동의", phone="010-1111-2222")
    withdrawn = make_customer("seoul-hotel", name="이철회")
    never = make_customer("seoul-hotel", name="박무응답")
    suspended = make_customer("seoul-hotel", name="최정지")
    elsewhere = make_customer("bakery", name="정빵집")
    for person in (yes, withdrawn, suspended, elsewhere):
        consent(person, outbound, at=timezone.now() - dt.timedelta(hours=1))
    consent(withdrawn, outbound, granted=False)
    Customer.objects.filter(pk=suspended.pk).update(processing_suspended=True)
    ensure_account(yes)
    return {"yes": yes, "never": never, "withdrawn": withdrawn}


def test_an_export_holds_only_consenting_customers_and_agreed_fields_encrypted(outbound, audience, mina):
    outcome = services.export_to_partner(actor=Actor(user=mina), agreement=outbound, fields=["phone", "name"])
    transfer = outcome.transfer
    assert (transfer.customers, transfer.fields, transfer.status, transfer.by) == (1, ["name", "phone"], "ready", mina)
    assert transfer.expires_at == transfer.at + dt.timedelta(hours=72)
    path = Path(transfer.path)
    with pytest.raises(RuntimeError):
        unzip(path, "wrong password")
    rows = unzip(path, outcome.password)
    assert rows == [["Name", "Mobile phone"], ["김동의", "+821011112222"]]
    assert "김동의".encode() not in path.read_bytes()  # encrypted, not merely zipped
    assert outcome.password not in str(Transfer.objects.values().get()) and outcome.token not in str(Transfer.objects.values().get())
    assert AuditEvent.objects.filter(action="partners.export", actor=mina, fields=["name", "phone"]).exists()


def test_an_export_refuses_fields_not_agreed_and_writes_nothing(outbound, audience, mina):
    with pytest.raises(ValidationError) as caught:
        services.export_to_partner(actor=Actor(user=mina), agreement=outbound, fields=["name", "email"])
    assert caught.value.message_dict == {"fields": ["Not allowed by the agreement: email."]}
    assert not Transfer.objects.exists()


def test_an_export_without_any_consent_is_refused(outbound, make_customer, mina):
    make_customer("seoul-hotel")
    with pytest.raises(ValidationError) as caught:
        services.export_to_partner(actor=Actor(user=mina), agreement=outbound)
    assert caught.value.message_dict == {"agreement": ["No customer has consented to this provision: nothing to export."]}
    assert not Transfer.objects.exists()


def test_staff_and_managers_of_other_units_may_not_export(outbound, audience, bora, units):
    from dangol.core.models import Role
    from dangol.core.services import create_staff_user

    with pytest.raises(PermissionDenied):
        services.export_to_partner(actor=Actor(user=bora), agreement=outbound)
    baker = create_staff_user(username="baker", password="x" * 12, role=Role.MANAGER, units=[units["bakery"]])
    with pytest.raises(PermissionDenied):
        services.export_to_partner(actor=Actor(user=baker), agreement=outbound)


def test_an_agreement_out_of_force_or_an_inactive_partner_exports_nothing(outbound, audience, alice):
    Partner.objects.filter(pk=outbound.partner_id).update(is_active=False)
    outbound.refresh_from_db()
    with pytest.raises(ValidationError):
        services.export_to_partner(actor=Actor(user=alice), agreement=outbound)
    Partner.objects.filter(pk=outbound.partner_id).update(is_active=True)
    outbound.refresh_from_db()
    with pytest.raises(ValidationError):
        services.export_to_partner(actor=Actor(user=alice), agreement=outbound, now=outbound.valid_until + dt.timedelta(days=1))
    assert not Transfer.objects.exists()


def test_the_download_counts_and_expires_and_the_job_deletes_the_file(outbound, audience, mina):
    outcome = services.export_to_partner(actor=Actor(user=mina), agreement=outbound)
    got = services.download(outcome.token, actor=Actor.system("test"))
    assert got.pk == outcome.transfer.pk and Transfer.objects.get().downloads == 1
    assert services.download("not-a-token", actor=Actor.system("test")) is None
    later = outcome.transfer.expires_at + dt.timedelta(seconds=1)
    assert services.download(outcome.token, actor=Actor.system("test"), now=later) is None
    assert not Path(outcome.transfer.path).exists() and Transfer.objects.get().status == TransferStatus.EXPIRED
    second = services.export_to_partner(actor=Actor(user=mina), agreement=outbound)
    assert services.purge_expired_exports(now=second.transfer.expires_at) == 1
    assert not Path(second.transfer.path).exists()


# --- imports -------------------------------------------------------------------------------------------------------------

def write(tmp_path, text: str, name="partner.csv", encoding="utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_an_import_takes_only_the_consenting_rows_through_the_pipeline_and_marks_their_origin(inbound, tmp_path, mina):
    path = write(tmp_path, "이름,휴대폰,제3자제공동의\n김카드,010-3333-4444,Y\n이거부,010-5555-6666,N\n박동의,01077778888,동의\n"
                           "최번호,0101234,Y\n")
    outcome = services.import_from_partner(actor=Actor(user=mina), agreement=inbound, path=path)
    job, transfer = outcome.job, outcome.transfer
    assert (job.status, job.created, job.rejected, outcome.refused_without_consent) == ("done", 2, 1, 1)
    assert (transfer.direction, transfer.customers, transfer.rejected, transfer.status) == ("from_partner", 2, 2, "done")
    assert job.unit == inbound.unit and job.original_name.startswith("Hanbit Card:")
    names = set(Customer.objects.values_list("name", flat=True))
    assert names == {"김카드", "박동의"}
    origins = PartnerOrigin.objects.select_related("customer")
    assert {o.customer.name for o in origins} == {"김카드", "박동의"} and all(o.created for o in origins)
    consents = ThirdPartyConsent.objects.filter(method=ConsentMethod.PARTNER_FILE)
    assert consents.count() == 2 and {c.evidence.split(",")[1].strip() for c in consents} == {"row 2", "row 4"}
    assert AuditEvent.objects.filter(action="partners.import", actor=mina).exists()


@pytest.mark.parametrize("content, message", [
    ("이름,휴대폰\n김카드,010-3333-4444\n", "no consent column"),
    ("이름,휴대폰,consent\n김카드,010-3333-4444,N\n", "No row of the file says the customer consented"),
    ("\x00\x01\x02 not a table", "file"),
])
def test_a_bad_or_unconsented_partner_file_imports_nothing(inbound, tmp_path, mina, content, message):
    path = write(tmp_path, content)
    with pytest.raises(ValidationError) as caught:
        services.import_from_partner(actor=Actor(user=mina), agreement=inbound, path=path)
    text = " ".join(m for ms in caught.value.message_dict.values() for m in ms)
    assert message in text or message in caught.value.message_dict
    assert not Customer.objects.exists() and not Transfer.objects.exists()


def test_an_import_needs_an_import_agreement_in_force(outbound, inbound, tmp_path, mina, bora):
    path = write(tmp_path, "이름,휴대폰,consent\n김카드,010-3333-4444,Y\n")
    with pytest.raises(ValidationError):
        services.import_from_partner(actor=Actor(user=mina), agreement=outbound, path=path)
    with pytest.raises(PermissionDenied):
        services.import_from_partner(actor=Actor(user=bora), agreement=inbound, path=path)
    with pytest.raises(ValidationError):
        services.import_from_partner(actor=Actor(user=mina), agreement=inbound, path=path,
                                     now=inbound.valid_until + dt.timedelta(hours=1))
    assert not Customer.objects.exists()


# --- erasure and merges ------------------------------------------------------------------------------------------------------

def test_erasure_scrubs_the_consent_evidence(outbound, make_customer):
    from dangol.core import events

    kim = make_customer("seoul-hotel")
    consent(kim, outbound)
    events.emit("customer_erased", customer_id=kim.pk)
    assert ThirdPartyConsent.objects.get().evidence == ""


def test_a_merge_moves_consents_and_the_undo_moves_them_back(outbound, make_customer, alice):
    from dangol.ingest.merge import merge_customers, unmerge

    survivor, duplicate = make_customer("seoul-hotel", name="한동의"), make_customer("seoul-hotel", name="한동의")
    consent(duplicate, outbound)
    merge = merge_customers(actor=Actor(user=alice), survivor=survivor, merged=duplicate)
    assert list(services.consenting_customers(outbound)) == [survivor]
    unmerge(actor=Actor(user=alice), merge=merge)
    assert list(services.consenting_customers(outbound)) == [duplicate]
