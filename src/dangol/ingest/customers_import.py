"""Import a unit's customer list: check every row, then match, create and update set-based.

Matching, in order: the unit's own customer id (``SourceRecord``), then the same phone number with the same name,
then the same email with the same name. Anything looser is left to record linkage (``dedupe``), which can be
reviewed and undone; an import cannot. New customers are written with bulk inserts (COPY on PostgreSQL); matched
customers whose row is unchanged since the last import of that id cost nothing; the others are compared field by
field and updated through the same rules as the staff app.
"""
from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import polars as pl
from django.db import connection
from django.utils import timezone

from dangol.core import bulk
from dangol.core.audit import Actor
from dangol.core.bulk import NullableInts, Rows, Timestamps
from dangol.core.models import BusinessUnit
from dangol.customers.models import (
    Address,
    Anniversary,
    AnniversaryKind,
    Consent,
    ConsentSource,
    ContactKind,
    ContactPoint,
    Customer,
    Membership,
    Purpose,
    Stage,
)

from . import normalize as n
from .fields import CONSENT_FIELDS
from .models import ImportJob, SourceRecord
from .reader import Table

NIGHT_CHANNELS = ("sms", "kakao")
HASHED = ["name", "phone", "email", "gender", "birth_y", "birth_m", "birth_d", "birth_lunar", "birth_leap", "sido",
          "sigungu", "address_line", "postal_code", "joined_given", *CONSENT_FIELDS, "consent_night"]


def check(table: Table, mapping: dict[str, str], *, today: dt.date, now: dt.datetime) -> n.Checked:
    """Normalise the mapped columns and list every bad value. ``good`` has one row per importable customer."""
    frame = table.frame
    selected = [pl.col("__row")]
    for header, key in mapping.items():
        if key:
            selected.append(pl.col(header).fill_null("").alias(f"raw_{key}"))
    frame = frame.select(selected)
    header_of = {key: header for header, key in mapping.items() if key}
    for key in ("source_id", "name", "phone", "email", "gender", "birth_date", "birth_lunar", "address", "postal_code",
                "joined_at", *CONSENT_FIELDS, "consent_night"):
        if f"raw_{key}" not in frame.columns:
            frame = frame.with_columns(pl.lit("", dtype=pl.Utf8).alias(f"raw_{key}"))
    errors: list[pl.DataFrame] = []

    def fail(mask: pl.Expr, key: str, code: str, *, quote: bool = True):
        errors.append(n.error_rows(frame, mask, column=header_of.get(key, ""), value=f"raw_{key}" if quote else None, code=code))

    frame = frame.with_columns(
        source_id=n.clean_text(pl.col("raw_source_id")),
        name=n.clean_text(pl.col("raw_name")),
        phone=n.normalize_phones(frame.get_column("raw_phone")),
        email=n.normalize_emails(frame.get_column("raw_email")),
    )
    fail(pl.col("source_id").str.len_chars() > 60, "source_id", "source_id_too_long")
    fail(pl.col("name") == "", "name", "name_missing", quote=False)
    fail(pl.col("name").str.len_chars() > 100, "name", "name_too_long")
    fail(pl.col("phone").is_null(), "phone", "phone_invalid")
    fail(pl.col("email").is_null(), "email", "email_invalid")
    fail((pl.col("source_id") == "") & (pl.col("raw_phone").str.strip_chars() == "") & (pl.col("raw_email").str.strip_chars() == ""),
         "source_id", "key_missing", quote=False)

    gender_text = pl.col("raw_gender").str.strip_chars().str.to_lowercase()
    frame = frame.with_columns(gender=gender_text.replace_strict(n.GENDERS, default=None, return_dtype=pl.Utf8))
    frame = frame.with_columns(gender=pl.when(gender_text == "").then(pl.lit("")).otherwise(pl.col("gender")))
    fail(pl.col("gender").is_null(), "gender", "gender_invalid")

    lunar, lunar_bad = n.yes_no(pl.col("raw_birth_lunar"), yes=n.LUNAR_YES, no=n.LUNAR_NO)
    leap = pl.col("raw_birth_lunar").str.strip_chars().str.to_lowercase().is_in(list(n.LEAP))
    frame = frame.with_columns(birth_lunar=lunar.fill_null(False), birth_leap=leap, lunar_bad=lunar_bad)
    frame = n.with_date(frame, "raw_birth_date", "birth", today).rename({"birth_date": "birth_solar"})
    fail(pl.col("lunar_bad"), "birth_lunar", "flag_invalid")
    birth_given = pl.col("raw_birth_date").str.strip_chars() != ""
    lunar_ok = pl.col("birth_m").is_between(1, 12) & pl.col("birth_d").is_between(1, 30)
    birth_ok = pl.when(pl.col("birth_lunar")).then(lunar_ok).otherwise(pl.col("birth_solar").is_not_null()).fill_null(False)
    fail(birth_given & ~birth_ok, "birth_date", "date_invalid")
    fail(birth_given & birth_ok & (pl.col("birth_y") < 1900), "birth_date", "date_too_old")
    fail(birth_given & birth_ok & ~pl.col("birth_lunar") & (pl.col("birth_solar") > pl.lit(today)), "birth_date", "date_future")
    frame = frame.with_columns(has_birth=birth_given & birth_ok)

    frame = n.with_address(frame, "raw_address").with_columns(
        postal_code=pl.col("raw_postal_code").str.strip_chars().str.replace_all("-", ""))
    # Excel keeps a postal code typed as a number without its leading zero (06236 → 6236; every Seoul code starts with 0).
    frame = frame.with_columns(postal_code=pl.when(pl.col("postal_code").str.contains(r"^\d{4}$"))
                               .then(pl.col("postal_code").str.zfill(5)).otherwise(pl.col("postal_code")))
    fail((pl.col("postal_code") != "") & ~pl.col("postal_code").str.contains(r"^\d{5}$"), "postal_code", "postal_invalid")

    frame = n.with_date(frame, "raw_joined_at", "joined", today).rename({"joined_seconds": "joined_time"})
    joined_given = pl.col("raw_joined_at").str.strip_chars() != ""
    fail(joined_given & (pl.col("joined_date").is_null() | pl.col("joined_time_bad")), "joined_at", "date_invalid")
    frame = frame.with_columns(joined_at=pl.when(joined_given & pl.col("joined_date").is_not_null())
                               .then(n.seoul_datetime(pl.col("joined_date"), pl.col("joined_time")))
                               .otherwise(pl.lit(now).dt.convert_time_zone("UTC")))
    fail(joined_given & (pl.col("joined_at") > pl.lit(now).dt.convert_time_zone("UTC")), "joined_at", "date_future")
    fail(joined_given & (pl.col("joined_date") < pl.lit(dt.date(1900, 1, 1))), "joined_at", "date_too_old")

    for key in (*CONSENT_FIELDS, "consent_night"):
        value, bad = n.yes_no(pl.col(f"raw_{key}"))
        frame = frame.with_columns(value.alias(key), bad.alias(f"{key}_bad"))
        fail(pl.col(f"{key}_bad"), key, "flag_invalid")
    night_base = pl.any_horizontal([pl.col(f"consent_{ch}").fill_null(False) for ch in NIGHT_CHANNELS])
    fail(pl.col("consent_night").fill_null(False) & ~night_base, "consent_night", "night_without_marketing")

    error_frame = pl.concat(errors) if errors else n.empty_errors()
    rejected = error_frame.get_column("__row").unique()
    good = frame.filter(~pl.col("__row").is_in(rejected.implode()))
    # The same customer twice in one file, by the rules that match a row to a customer (the unit's id, or the same phone
    # or email with the same name; a family sharing a phone is several people): the first row counts, the later ones
    # are reported. Matching the second row to the first row's new customer on the next import would not be idempotent.
    good = good.with_columns(name_key=pl.col("name").str.replace_all(" ", ""))
    good = good.with_columns(first_row=pl.min_horizontal(
        pl.when(pl.col(key) != "").then(pl.col("__row").min().over(key, *together)).otherwise(pl.col("__row"))
        for key, together in (("source_id", ()), ("phone", ("name_key",)), ("email", ("name_key",)))))
    duplicates = good.filter(pl.col("__row") != pl.col("first_row"))
    if duplicates.height:
        column = header_of.get("source_id") or header_of.get("phone") or header_of.get("email", "")
        error_frame = pl.concat([error_frame, duplicates.select(
            pl.col("__row"), pl.lit(column, dtype=pl.Utf8).alias("column"), pl.lit("", dtype=pl.Utf8).alias("value"),
            pl.lit("duplicate_in_file", dtype=pl.Utf8).alias("code"), pl.col("first_row").cast(pl.Int64).alias("ref_row"))])
        good = good.filter(pl.col("__row") == pl.col("first_row"))
    good = good.with_columns(
        phone=pl.col("phone").fill_null(""), email=pl.col("email").fill_null(""),
        birth_y=pl.when(pl.col("has_birth")).then(pl.col("birth_y")).otherwise(None),
        birth_m=pl.when(pl.col("has_birth")).then(pl.col("birth_m")).otherwise(None),
        birth_d=pl.when(pl.col("has_birth")).then(pl.col("birth_d")).otherwise(None),
        # What the row hash sees of the join date: none when the file gives none (the import's time is no data).
        joined_given=pl.when(pl.col("raw_joined_at").str.strip_chars() != "").then(pl.col("joined_at")).otherwise(None),
    )
    good = good.select("__row", "source_id", "name", "name_key", "phone", "email", "gender", "birth_y", "birth_m",
                       "birth_d", "birth_lunar", "birth_leap", "sido", "sigungu", "address_line", "postal_code",
                       "joined_at", "joined_given", *CONSENT_FIELDS, "consent_night")
    return n.Checked(good=good, errors=error_frame)


def row_hashes(good: pl.DataFrame) -> list[str]:
    """A digest of each row's normalised values: the same row imported again is recognised without reading the
    customer back."""
    text = good.select(pl.concat_str([pl.col(c).cast(pl.Utf8).fill_null("∅") for c in HASHED], separator="\x1f")).to_series()
    return [hashlib.blake2b(value.encode(), digest_size=16).hexdigest() for value in text.to_list()]


# --- matching -----------------------------------------------------------------------------------------------------

def lock_referenced(table: str, ids: list[int]) -> None:
    """Row locks on existing rows that new rows will refer to, so that none is deleted before the import commits (the
    import's foreign keys are not re-checked row by row on PostgreSQL: ``bulk.without_row_triggers``). SQLite: the
    import holds the database's write lock already."""
    if connection.vendor != "postgresql":
        return
    for part in _chunks(sorted(set(ids))):
        _fetch(f"SELECT id FROM {table} WHERE id IN ({', '.join(['%s'] * len(part))}) FOR KEY SHARE", part)


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _chunks(values: list, size: int = 5000):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def match(good: pl.DataFrame, unit: BusinessUnit) -> pl.DataFrame:
    """Add customer_id (null: new), via ("source", "phone", "email") and last_hash to the good rows."""
    frame = good.with_columns(pl.lit(None, dtype=pl.Int64).alias("customer_id"), pl.lit(None, dtype=pl.Utf8).alias("via"),
                              pl.lit(None, dtype=pl.Utf8).alias("last_hash"))
    ids = frame.filter(pl.col("source_id") != "").get_column("source_id").to_list()
    if ids:
        rows = []
        for part in _chunks(ids):
            rows += _fetch(f"SELECT s.source_id, s.customer_id, s.row_hash FROM ingest_sourcerecord s "
                           f"WHERE s.unit_id = %s AND s.source_id IN ({', '.join(['%s'] * len(part))})", [unit.pk, *part])
        known = pl.DataFrame(rows, schema={"source_id": pl.Utf8, "src_customer": pl.Int64, "src_hash": pl.Utf8}, orient="row")
        frame = frame.join(known, on="source_id", how="left").with_columns(
            customer_id=pl.col("src_customer"), last_hash=pl.col("src_hash"),
            via=pl.when(pl.col("src_customer").is_not_null()).then(pl.lit("source")).otherwise(None),
        ).drop("src_customer", "src_hash")
    for kind in ("phone", "email"):
        wanted = frame.filter(pl.col("customer_id").is_null() & (pl.col(kind) != "")).get_column(kind).unique().to_list()
        if not wanted:
            continue
        rows = []
        for part in _chunks(wanted):
            rows += _fetch(
                "SELECT cp.value, c.id, c.name FROM customers_contactpoint cp JOIN customers_customer c ON c.id = cp.customer_id "
                f"WHERE cp.kind = %s AND c.merged_into_id IS NULL AND cp.value IN ({', '.join(['%s'] * len(part))})", [kind, *part])
        if not rows:
            continue
        found = pl.DataFrame(rows, schema={kind: pl.Utf8, "found_id": pl.Int64, "found_name": pl.Utf8}, orient="row")
        found = (found.with_columns(found_key=pl.col("found_name").str.replace_all(" ", ""))
                 .sort("found_id").unique(subset=[kind, "found_key"], keep="first"))
        frame = frame.join(found.select(kind, "found_key", "found_id"), left_on=[kind, "name_key"], right_on=[kind, "found_key"],
                           how="left")
        frame = frame.with_columns(
            via=pl.when(pl.col("customer_id").is_null() & pl.col("found_id").is_not_null()).then(pl.lit(kind)).otherwise(pl.col("via")),
            customer_id=pl.coalesce("customer_id", "found_id"),
        ).drop("found_id")
    # Two rows of the file matched to one customer (say a new id for a known phone): only the first row updates it.
    frame = frame.with_columns(first_for_customer=pl.col("__row").min().over("customer_id"))
    return frame


# --- writing ------------------------------------------------------------------------------------------------------

def allocate_ids(model, count: int) -> np.ndarray:
    """Primary keys for ``count`` new rows, taken from PostgreSQL's sequence (safe beside concurrent inserts by the
    app) or, on SQLite, above the maximum (the import holds SQLite's write lock for the whole transaction)."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    table = model._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Usually the values come out consecutive (nobody else took one meanwhile): then two numbers say it all.
            cursor.execute("WITH s AS (SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS v FROM generate_series(1, %s)) "
                           "SELECT min(v), max(v) FROM s", [table, count])
            low, high = cursor.fetchone()
            if high - low + 1 == count:
                return np.arange(low, high + 1, dtype=np.int64)
            cursor.execute(f"SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count])
            return np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)
    first = bulk.next_ids([model])[model]
    return first + np.arange(count, dtype=np.int64)


def _epoch_seconds(series: pl.Series) -> np.ndarray:
    return series.dt.epoch("s").to_numpy().astype(np.int64)


def create_new(new: pl.DataFrame, *, unit: BusinessUnit, job: ImportJob, actor: Actor, hashes: list[str]) -> int:
    count = new.height
    if count == 0:
        return 0
    now_s = int(timezone.now().timestamp())
    user_id = actor.user.pk if actor.user else None
    ids = allocate_ids(Customer, count)
    joined_s = _epoch_seconds(new.get_column("joined_at"))
    bulk.write(Rows(Customer, count, {
        "id": ids, "name": new.get_column("name").to_list(), "gender": new.get_column("gender").to_list(),
        "stage": Stage.PROSPECT.value, "home_unit": unit.pk, "joined_at": Timestamps(joined_s),
        "created_at": Timestamps(np.full(count, now_s)), "updated_at": Timestamps(np.full(count, now_s)),
        "created_by": user_id, "merged_into": None,
    }))
    for kind, label in ((ContactKind.PHONE, "mobile"), (ContactKind.EMAIL, "")):
        picked = new.with_row_index("i").filter(pl.col(kind.value) != "")
        if picked.height:
            values = picked.get_column(kind.value).to_list()
            bulk.write(Rows(ContactPoint, picked.height, {
                "id": allocate_ids(ContactPoint, picked.height), "customer": ids[picked.get_column("i").to_numpy()],
                "kind": kind.value, "value": values,
                "last4": picked.get_column(kind.value).str.replace_all(r"\D", "").str.slice(-4).to_list() if kind == ContactKind.PHONE else "",
                "label": label, "is_primary": True, "created_at": Timestamps(np.full(picked.height, now_s)),
            }))
    indexed = new.with_row_index("i")
    consent_parts = []
    for key, channel in CONSENT_FIELDS.items():
        part = indexed.filter(pl.col(key).is_not_null()).select("i", "__row", pl.col(key).alias("granted"),
                                                                 pl.lit(channel).alias("channel"), pl.lit(Purpose.MARKETING.value).alias("purpose"))
        consent_parts.append(part)
        if channel in NIGHT_CHANNELS:
            # Night-time consent goes with each advertising channel granted in the row; a refusal of the channel
            # withdraws it too (the staff app's rule).
            night = indexed.filter(pl.col("consent_night").is_not_null() & pl.col(key).is_not_null()).select(
                "i", "__row", (pl.col("consent_night") & pl.col(key)).alias("granted"), pl.lit(channel).alias("channel"),
                pl.lit(Purpose.NIGHT_MARKETING.value).alias("purpose"))
            consent_parts.append(night)
    consents = pl.concat(consent_parts) if consent_parts else None
    if consents is not None and consents.height:
        bulk.write(Rows(Consent, consents.height, {
            "id": allocate_ids(Consent, consents.height), "customer": ids[consents.get_column("i").to_numpy()],
            "channel": consents.get_column("channel").to_list(), "purpose": consents.get_column("purpose").to_list(),
            "granted": consents.get_column("granted").to_numpy(), "at": Timestamps(np.full(consents.height, now_s)),
            "source": ConsentSource.IMPORT.value, "unit": unit.pk, "method": f"import #{job.pk}"[:60],
            "evidence": [f"{job.original_name}, row {row}" for row in consents.get_column("__row").to_list()],
            "recorded_by": user_id,
        }))
    births = indexed.filter(pl.col("birth_m").is_not_null())
    if births.height:
        bulk.write(Rows(Anniversary, births.height, {
            "id": allocate_ids(Anniversary, births.height), "customer": ids[births.get_column("i").to_numpy()],
            "kind": AnniversaryKind.BIRTHDAY.value, "label": "",
            "year": NullableInts(births.get_column("birth_y").fill_null(0).to_numpy().astype(np.int64),
                                 births.get_column("birth_y").is_null().to_numpy()),
            "month": births.get_column("birth_m").to_numpy().astype(np.int64),
            "day": births.get_column("birth_d").to_numpy().astype(np.int64),
            "is_lunar": births.get_column("birth_lunar").to_numpy(), "is_leap_month": births.get_column("birth_leap").to_numpy(),
        }))
    addresses = indexed.filter((pl.col("sido") != "") | (pl.col("address_line") != "") | (pl.col("postal_code") != ""))
    if addresses.height:
        bulk.write(Rows(Address, addresses.height, {
            "id": allocate_ids(Address, addresses.height), "customer": ids[addresses.get_column("i").to_numpy()],
            "sido": addresses.get_column("sido").to_list(), "sigungu": addresses.get_column("sigungu").to_list(),
            "line": addresses.get_column("address_line").to_list(), "postal_code": addresses.get_column("postal_code").to_list(),
            "is_primary": True,
        }))
    bulk.write(Rows(Membership, count, {
        "id": allocate_ids(Membership, count), "customer": ids, "unit": unit.pk, "joined_at": Timestamps(joined_s),
        "source": "import",
    }))
    keyed = indexed.filter(pl.col("source_id") != "")
    if keyed.height:
        positions = keyed.get_column("i").to_numpy()
        bulk.write(Rows(SourceRecord, keyed.height, {
            "id": allocate_ids(SourceRecord, keyed.height), "unit": unit.pk, "source_id": keyed.get_column("source_id").to_list(),
            "customer": ids[positions], "original_customer": ids[positions], "job": job.pk,
            "row_hash": [hashes[i] for i in positions.tolist()],
        }))
    return count


def update_matched(rows: list[dict], *, unit: BusinessUnit, job: ImportJob, actor: Actor) -> tuple[int, int]:
    """Compare each matched row with its customer and apply what the file changes; (updated, unchanged).

    The file wins for what it states (name, gender, birthday, address; a phone or email is added, never removed),
    with one exception: an imported "yes" never overrides a withdrawal the customer made themselves (at the counter,
    on the web, by the 080 opt-out…) — a stale export must not re-subscribe anybody.
    """
    updated = unchanged = 0
    now = timezone.now()
    user = actor.user
    for part in _chunks(rows, 1000):
        ids = [row["customer_id"] for row in part]
        # Locked: rows written below refer to these customers without per-row foreign-key checks.
        customers = Customer.objects.select_for_update().in_bulk(ids)
        contacts: dict[int, list[ContactPoint]] = {}
        for contact in ContactPoint.objects.filter(customer_id__in=ids):
            contacts.setdefault(contact.customer_id, []).append(contact)
        birthdays = {a.customer_id: a for a in Anniversary.objects.filter(customer_id__in=ids, kind=AnniversaryKind.BIRTHDAY).order_by("id")}
        addresses = {a.customer_id: a for a in Address.objects.filter(customer_id__in=ids, is_primary=True)}
        members = set(Membership.objects.filter(customer_id__in=ids, unit=unit).values_list("customer_id", flat=True))
        consent_state: dict[tuple[int, str, str], Consent] = {}
        for consent in Consent.objects.filter(customer_id__in=ids).order_by("at", "-granted", "id"):
            consent_state[(consent.customer_id, consent.channel, consent.purpose)] = consent
        sources = {s.source_id: s for s in SourceRecord.objects.filter(unit=unit, source_id__in=[r["source_id"] for r in part if r["source_id"]])}
        new_contacts, new_consents, new_members = [], [], []
        changed_customers, changed_birthdays, new_birthdays, changed_addresses, new_addresses = [], [], [], [], []
        changed_sources, new_sources = [], []
        for row in part:
            customer = customers[row["customer_id"]]
            changed = False
            # Spacing is how a unit typed the name ("김 하늘"), not a new name: keep the stored form then.
            if row["name"] and customer.name.replace(" ", "") != row["name"].replace(" ", ""):
                customer.name, changed = row["name"], True
            if row["gender"] and customer.gender != row["gender"]:
                customer.gender, changed = row["gender"], True
            if changed:
                customer.updated_at = now
                changed_customers.append(customer)
            have = contacts.get(customer.pk, [])
            for kind in (ContactKind.PHONE, ContactKind.EMAIL):
                value = row[kind.value]
                if value and not any(c.kind == kind and c.value == value for c in have):
                    has_primary = any(c.kind == kind and c.is_primary for c in have)
                    new_contacts.append(ContactPoint(customer_id=customer.pk, kind=kind, value=value,
                                                     last4=value[-4:] if kind == ContactKind.PHONE else "",
                                                     label="mobile" if kind == ContactKind.PHONE else "", is_primary=not has_primary))
                    changed = True
            if row["birth_m"] is not None:
                wanted = (row["birth_y"], row["birth_m"], row["birth_d"], row["birth_lunar"], row["birth_leap"])
                current = birthdays.get(customer.pk)
                if current is None:
                    new_birthdays.append(Anniversary(customer_id=customer.pk, kind=AnniversaryKind.BIRTHDAY, year=wanted[0],
                                                     month=wanted[1], day=wanted[2], is_lunar=wanted[3], is_leap_month=wanted[4]))
                    changed = True
                elif (current.year, current.month, current.day, current.is_lunar, current.is_leap_month) != wanted:
                    current.year, current.month, current.day, current.is_lunar, current.is_leap_month = wanted
                    changed_birthdays.append(current)
                    changed = True
            if row["sido"] or row["address_line"] or row["postal_code"]:
                current_address = addresses.get(customer.pk)
                # A file without a postal code keeps the one stored (the street is the same or the unit never had it).
                postal = row["postal_code"] or (current_address.postal_code if current_address else "")
                wanted_address = (row["sido"], row["sigungu"], row["address_line"], postal)
                if current_address is None:
                    new_addresses.append(Address(customer_id=customer.pk, sido=wanted_address[0], sigungu=wanted_address[1],
                                                 line=wanted_address[2], postal_code=wanted_address[3], is_primary=True))
                    changed = True
                elif (current_address.sido, current_address.sigungu, current_address.line, current_address.postal_code) != wanted_address:
                    (current_address.sido, current_address.sigungu, current_address.line,
                     current_address.postal_code) = wanted_address
                    changed_addresses.append(current_address)
                    changed = True
            for key, channel in CONSENT_FIELDS.items():
                wishes = []
                if row[key] is not None:
                    wishes.append((Purpose.MARKETING.value, row[key]))
                    if channel in NIGHT_CHANNELS and row["consent_night"] is not None:
                        wishes.append((Purpose.NIGHT_MARKETING.value, bool(row["consent_night"] and row[key])))
                marketing_in_force = False
                for purpose, granted in wishes:
                    if purpose == Purpose.NIGHT_MARKETING.value:
                        # The night-time consent goes with the advertising consent in force after this row, which
                        # stays withdrawn when the customer withdrew it themselves.
                        granted = granted and marketing_in_force
                    current_consent = consent_state.get((customer.pk, channel, purpose))
                    if current_consent is not None and current_consent.granted == granted:
                        marketing_in_force = granted
                        continue
                    if (granted and current_consent is not None and not current_consent.granted
                            and current_consent.source != ConsentSource.IMPORT):
                        marketing_in_force = False
                        continue  # the customer's own refusal stands
                    if (not granted and current_consent is not None and current_consent.granted
                            and current_consent.unit_id not in (None, unit.pk)):
                        # One unit's list saying "no" only means that unit never asked: it does not withdraw a
                        # consent the customer gave at another unit of the group.
                        marketing_in_force = True
                        continue
                    marketing_in_force = granted
                    new_consents.append(Consent(customer_id=customer.pk, channel=channel, purpose=purpose, granted=granted, at=now,
                                                source=ConsentSource.IMPORT, unit=unit, method=f"import #{job.pk}"[:60],
                                                evidence=f"{job.original_name}, row {row['__row']}", recorded_by=user))
                    changed = True
            if customer.pk not in members:
                new_members.append(Membership(customer_id=customer.pk, unit=unit, joined_at=row["joined_at"], source="import"))
                members.add(customer.pk)
                changed = True
            if row["source_id"]:
                record = sources.get(row["source_id"])
                if record is None:
                    new_sources.append(SourceRecord(unit=unit, source_id=row["source_id"], customer_id=customer.pk,
                                                    original_customer_id=customer.pk, job=job, row_hash=row["hash"]))
                    changed = True
                elif record.row_hash != row["hash"]:
                    record.row_hash, record.job = row["hash"], job
                    changed_sources.append(record)
            if changed:
                updated += 1
            else:
                unchanged += 1
        Customer.objects.bulk_update(changed_customers, ["name", "gender", "updated_at"])
        ContactPoint.objects.bulk_create(new_contacts)
        Anniversary.objects.bulk_update(changed_birthdays, ["year", "month", "day", "is_lunar", "is_leap_month"])
        Anniversary.objects.bulk_create(new_birthdays)
        Address.objects.bulk_update(changed_addresses, ["sido", "sigungu", "line", "postal_code"])
        Address.objects.bulk_create(new_addresses)
        Consent.objects.bulk_create(new_consents)
        Membership.objects.bulk_create(new_members, ignore_conflicts=True)
        SourceRecord.objects.bulk_update(changed_sources, ["row_hash", "job"])
        SourceRecord.objects.bulk_create(new_sources)
    return updated, unchanged
