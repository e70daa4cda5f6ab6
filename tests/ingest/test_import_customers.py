"""Importing a unit's customer list: normalisation of every column, counts, idempotency, updates, matching, dry runs,
the error report, and jobs that cannot run or crash midway (which write nothing)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
import zoneinfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone, translation

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.models import Consent, ContactPoint, Customer, Membership
from dangol.customers.services import current_consents, set_consent
from dangol.ingest import services
from dangol.ingest.models import ImportKind, JobStatus, RowError, SourceRecord

from tests.ingest.conftest import counts, data_counts, error_codes, row_errors

SEOUL = zoneinfo.ZoneInfo("Asia/Seoul")
BAKERY_HEADERS = ["회원번호", "성명", "휴대폰", "이메일", "생년월일", "음력", "주소", "가입일", "SMS수신동의", "이메일수신동의", "야간수신동의"]


def member(source_id="B1", name="김하늘", phone="010-1234-5678", email="", birth="", lunar="", address="", joined="",
           sms="", email_consent="", night="") -> list[str]:
    return [source_id, name, phone, email, birth, lunar, address, joined, sms, email_consent, night]


def by_source(unit, source_id: str) -> Customer:
    return SourceRecord.objects.select_related("customer").get(unit=unit, source_id=source_id).customer


def assert_counts_add_up(job) -> None:
    read, created, updated, unchanged, rejected = counts(job)
    assert read == created + updated + unchanged + rejected, counts(job)


def values(customer: Customer) -> dict:
    """Everything an import writes about one customer, comparable before and after."""
    return {
        "customer": Customer.objects.filter(pk=customer.pk).values("name", "gender", "stage", "home_unit", "joined_at").get(),
        "contacts": sorted(customer.contacts.values_list("kind", "value", "is_primary", "last4")),
        "consents": sorted(customer.consents.values_list("channel", "purpose", "granted", "source", "method", "evidence")),
        "birthdays": list(customer.anniversaries.values_list("year", "month", "day", "is_lunar", "is_leap_month")),
        "addresses": list(customer.addresses.values_list("sido", "sigungu", "line", "postal_code")),
        "memberships": sorted(customer.memberships.values_list("unit__code", "source", "joined_at")),
        "sources": sorted(SourceRecord.objects.filter(customer=customer).values_list("unit__code", "source_id", "row_hash", "job")),
    }


# --- a first import: every column normalised ---------------------------------------------------------------------

def test_it_imports_a_cp949_export_with_korean_headers_and_normalises_every_column(files, run_import, units):
    path = files.csv("bakery.csv", BAKERY_HEADERS, [
        member("B1", " 김  하늘 ", "010-1234-5678", "Kim.HaNeul@Naver.COM", "1990.01.31", "양력", "서울 강남구 테헤란로 1, 101호",
               "2024-03-01", "Y", "N", "Y"),
        member("B2", "이별", "+82 10 2222 3333", "", "19851201", "음력", "경기 수원시 영통구 광교로 145", "2023.12.31 21:15",
               "동의", "", "N"),
        member("B3", "박서준", "1033334444", "park@daum.net", "", "", "", "", "", "1", ""),
    ], encoding="cp949")
    job = run_import("customers", "bakery", path)
    assert job.status == JobStatus.DONE, job.error
    assert job.encoding == "cp949"
    assert counts(job) == (3, 3, 0, 0, 0)
    assert job.counts_line == "read: 3, created: 3, updated: 0, unchanged: 0, rejected: 0"
    bakery = units["bakery"]

    kim = by_source(bakery, "B1")
    assert kim.name == "김 하늘" and kim.home_unit == bakery and kim.stage == "prospect"
    assert kim.joined_at == dt.datetime(2024, 3, 1, tzinfo=SEOUL)
    assert sorted(kim.contacts.values_list("kind", "value", "is_primary", "last4", "label")) == [
        ("email", "kim.haneul@naver.com", True, "", ""), ("phone", "+821012345678", True, "5678", "mobile")]
    assert list(kim.anniversaries.values_list("kind", "year", "month", "day", "is_lunar", "is_leap_month")) == [
        ("birthday", 1990, 1, 31, False, False)]
    assert list(kim.addresses.values_list("sido", "sigungu", "line", "postal_code", "is_primary")) == [
        ("서울특별시", "강남구", "테헤란로 1, 101호", "", True)]
    assert list(kim.memberships.values_list("unit", "source", "joined_at")) == [(bakery.pk, "import", kim.joined_at)]
    assert current_consents(kim) == {("sms", "marketing"): True, ("sms", "night_marketing"): True,
                                     ("email", "marketing"): False}

    lee = by_source(bakery, "B2")
    assert lee.joined_at == dt.datetime(2023, 12, 31, 21, 15, tzinfo=SEOUL)
    assert list(lee.contacts.values_list("value", flat=True)) == ["+821022223333"]
    assert list(lee.anniversaries.values_list("year", "month", "day", "is_lunar")) == [(1985, 12, 1, True)]
    assert list(lee.addresses.values_list("sido", "sigungu", "line")) == [("경기도", "수원시 영통구", "광교로 145")]
    assert current_consents(lee) == {("sms", "marketing"): True, ("sms", "night_marketing"): False}

    park = by_source(bakery, "B3")
    assert sorted(park.contacts.values_list("value", flat=True)) == ["+821033334444", "park@daum.net"]
    assert not park.anniversaries.exists() and not park.addresses.exists()
    assert current_consents(park) == {("email", "marketing"): True}

    # The job is the recorded source of each consent: where, how, and which row of which file.
    for consent in Consent.objects.filter(customer=kim):
        assert (consent.source, consent.unit, consent.method) == ("import", bakery, f"import #{job.pk}")
        assert consent.evidence == "bakery.csv, row 2"
        assert abs((consent.at - timezone.now()).total_seconds()) < 120
    assert Consent.objects.get(customer=lee, purpose="marketing").evidence == "bakery.csv, row 3"
    assert set(AuditEvent.objects.filter(object_type="ingest.importjob", object_id=str(job.pk)).values_list("action", flat=True)) == {
        "import.create", "import.run"}


@pytest.mark.parametrize("raw,expected", [
    ("1990-01-31", (1990, 1, 31)), ("1990.01.31", (1990, 1, 31)), ("19900131", (1990, 1, 31)), ("90/01/31", (1990, 1, 31)),
    ("1990/1/31", (1990, 1, 31)), ("1990년 1월 31일", (1990, 1, 31)), ("900131", (1990, 1, 31)),
    ("03/07/15", (2003, 7, 15)), ("99.12.31", (1999, 12, 31)),
])
def test_birth_dates_in_each_common_format(files, run_import, units, raw, expected):
    job = run_import("customers", "bakery", files.csv("b.csv", BAKERY_HEADERS, [member(birth=raw)]))
    assert counts(job) == (1, 1, 0, 0, 0), row_errors(job)
    assert list(by_source(units["bakery"], "B1").anniversaries.values_list("year", "month", "day")) == [expected]


@pytest.mark.parametrize("flag,lunar,leap", [("음력", True, False), ("음", True, False), ("Y", True, False), ("윤달", True, True),
                                             ("윤", True, True), ("leap", True, True), ("양력", False, False), ("N", False, False),
                                             ("", False, False)])
def test_lunar_and_leap_month_flags(files, run_import, units, flag, lunar, leap):
    job = run_import("customers", "bakery", files.csv("b.csv", BAKERY_HEADERS, [member(birth="1990-04-15", lunar=flag)]))
    assert counts(job) == (1, 1, 0, 0, 0), row_errors(job)
    assert list(by_source(units["bakery"], "B1").anniversaries.values_list("month", "day", "is_lunar", "is_leap_month")) == [
        (4, 15, lunar, leap)]


def test_a_lunar_30th_exists_where_a_solar_one_does_not(files, run_import, units):
    job = run_import("customers", "bakery", files.csv("b.csv", BAKERY_HEADERS, [
        member("B1", phone="010-1111-0001", birth="1990-02-30", lunar="음력"),
        member("B2", phone="010-1111-0002", birth="1990-02-30", lunar="양력"),
    ]))
    assert counts(job) == (2, 1, 0, 0, 1)
    assert row_errors(job) == [(3, "생년월일", "1990-02-30", "date_invalid")]
    assert list(by_source(units["bakery"], "B1").anniversaries.values_list("month", "day", "is_lunar")) == [(2, 30, True)]


@pytest.mark.parametrize("value,granted", [("Y", True), ("y", True), ("N", False), ("동의", True), ("미동의", False), ("1", True),
                                           ("0", False), ("O", True), ("X", False), ("예", True), ("거부", False)])
def test_consent_values(files, run_import, units, value, granted):
    job = run_import("customers", "bakery", files.csv("b.csv", BAKERY_HEADERS, [member(sms=value, email_consent=value)]))
    assert counts(job) == (1, 1, 0, 0, 0), row_errors(job)
    customer = by_source(units["bakery"], "B1")
    assert current_consents(customer) == {("sms", "marketing"): granted, ("email", "marketing"): granted}
    assert set(customer.consents.values_list("source", "unit", "method")) == {("import", units["bakery"].pk, f"import #{job.pk}")}


def test_a_blank_consent_records_nothing_and_a_value_that_is_not_yes_or_no_rejects_the_row(files, run_import, units):
    job = run_import("customers", "bakery", files.csv("b.csv", BAKERY_HEADERS, [
        member("B1", phone="010-1111-0001"),
        member("B2", phone="010-1111-0002", sms="maybe"),
        member("B3", phone="010-1111-0003", email_consent="?"),
    ]))
    assert counts(job) == (3, 1, 0, 0, 2)
    assert row_errors(job) == [(3, "SMS수신동의", "maybe", "flag_invalid"), (4, "이메일수신동의", "?", "flag_invalid")]
    assert not Consent.objects.exists()


def test_night_time_consent_needs_the_advertising_consent_of_sms_or_kakao(files, run_import, units):
    headers = ["회원번호", "성명", "휴대폰", "SMS수신동의", "카카오톡수신동의", "야간수신동의"]
    job = run_import("customers", "bakery", files.csv("night.csv", headers, [
        ["B1", "김하늘", "010-1111-0001", "Y", "N", "Y"],   # night for SMS; withdrawn for KakaoTalk with its channel
        ["B2", "이별", "010-1111-0002", "N", "", "Y"],      # night without any advertising consent
        ["B3", "박서준", "010-1111-0003", "", "", "Y"],
        ["B4", "최유리", "010-1111-0004", "N", "N", "N"],
    ]))
    assert counts(job) == (4, 2, 0, 0, 2)
    assert row_errors(job) == [(3, "야간수신동의", "Y", "night_without_marketing"), (4, "야간수신동의", "Y", "night_without_marketing")]
    assert current_consents(by_source(units["bakery"], "B1")) == {
        ("sms", "marketing"): True, ("sms", "night_marketing"): True,
        ("kakao", "marketing"): False, ("kakao", "night_marketing"): False}
    assert current_consents(by_source(units["bakery"], "B4"))[("sms", "night_marketing")] is False


@pytest.mark.parametrize("raw,expected", [
    ("서울 강남구 테헤란로 1, 101호", ("서울특별시", "강남구", "테헤란로 1, 101호")),
    ("경기 수원시 영통구 광교로 145", ("경기도", "수원시 영통구", "광교로 145")),
    ("부산광역시 해운대구 해운대로 2", ("부산광역시", "해운대구", "해운대로 2")),
    ("세종 한누리대로 2130", ("세종특별자치시", "", "한누리대로 2130")),
    ("테헤란로 1", ("", "", "테헤란로 1")),
])
def test_addresses_are_split_into_province_and_district(files, run_import, units, raw, expected):
    job = run_import("customers", "bakery", files.csv("b.csv", BAKERY_HEADERS, [member(address=raw)]))
    assert counts(job) == (1, 1, 0, 0, 0)
    assert list(by_source(units["bakery"], "B1").addresses.values_list("sido", "sigungu", "line")) == [expected]


@pytest.mark.parametrize("raw,expected", [
    ("010-1234-5678", "+821012345678"), ("+82 10-1234-5678", "+821012345678"), ("+82 010 1234 5678", "+821012345678"),
    ("1012345678", "+821012345678"), ("(010) 1234.5678", "+821012345678"), ("02-312-3456", "+8223123456"),
    ("+1 650-253-0000", "+16502530000"), ("+44 20 7946 0958", "+442079460958"),
])
def test_phone_numbers_are_stored_in_e164(files, run_import, units, raw, expected):
    job = run_import("customers", "bakery", files.csv("b.csv", BAKERY_HEADERS, [member(phone=raw)]))
    assert counts(job) == (1, 1, 0, 0, 0), row_errors(job)
    assert list(by_source(units["bakery"], "B1").contacts.values_list("value", "last4")) == [(expected, expected[-4:])]


def test_decomposed_hangul_names_are_stored_composed_and_match_composed_ones(files, run_import, units, make_customer):
    existing = make_customer("seoul-hotel", name="김하늘", phone="010-7777-8888")
    nfd = unicodedata.normalize("NFD", "김하늘")
    job = run_import("customers", "bakery", files.csv("mac.csv", ["성명", "휴대폰"], [[nfd, "010-7777-8888"],
                                                                                      [unicodedata.normalize("NFD", "이별"), "010-1111-2222"]]))
    assert counts(job) == (2, 1, 1, 0, 0)
    assert Membership.objects.filter(customer=existing, unit=units["bakery"]).exists()
    assert set(Customer.objects.values_list("name", flat=True)) == {"김하늘", "이별"}
    assert all(unicodedata.is_normalized("NFC", name) for name in Customer.objects.values_list("name", flat=True))


# --- bad rows -----------------------------------------------------------------------------------------------------

def test_each_bad_value_is_reported_and_its_row_writes_nothing_while_the_good_rows_are_imported(files, run_import, units):
    headers = [*BAKERY_HEADERS, "성별", "우편번호"]
    rows = [
        member("B1") + ["여", "06236"],
        member("B2", name="") + ["", ""],
        member("B3", phone="010-123-45", birth="1990-02-30") + ["", ""],
        member("B4", phone="010-2222-0004", email="yoon@") + ["", ""],
        member("B5", phone="010-2222-0005", joined="2999-01-01") + ["", ""],
        member("B6", phone="010-2222-0006", birth="1850-01-01") + ["", ""],
        member("B7", phone="010-2222-0007", birth="2999-01-01") + ["", ""],
        member("B8", phone="010-2222-0008") + ["?", ""],
        member("B9", phone="010-2222-0009") + ["", "1234567"],
        member("", phone="", email="") + ["", ""],
        member("B" * 61, phone="010-2222-0011") + ["", ""],
        member("B12", name="가" * 101, phone="010-2222-0012") + ["", ""],
        member("B13", phone="010-2222-0013", joined="어제") + ["", ""],
        member("B14", phone="010-2222-0014", lunar="maybe") + ["", ""],
    ]
    job = run_import("customers", "bakery", files.csv("bad.csv", headers, rows))
    assert counts(job) == (14, 1, 0, 0, 13)
    assert_counts_add_up(job)
    assert error_codes(job) == {
        3: {"name_missing"}, 4: {"phone_invalid", "date_invalid"}, 5: {"email_invalid"}, 6: {"date_future"},
        7: {"date_too_old"}, 8: {"date_future"}, 9: {"gender_invalid"}, 10: {"postal_invalid"}, 11: {"key_missing"},
        12: {"source_id_too_long"}, 13: {"name_too_long"}, 14: {"date_invalid"}, 15: {"flag_invalid"}}
    assert (4, "휴대폰", "010-123-45", "phone_invalid") in row_errors(job)
    assert Customer.objects.count() == 1 and ContactPoint.objects.count() == 1 and SourceRecord.objects.count() == 1
    good = by_source(units["bakery"], "B1")
    assert good.gender == "F"
    assert list(good.addresses.values_list("postal_code", flat=True)) == ["06236"]


def test_ragged_rows_are_rejected_and_lose_nothing_else(files, run_import, units):
    text = ("회원번호,성명,휴대폰,주소\r\n"
            "B1,김하늘,010-1111-0001,\"서울 강남구 테헤란로 1, 101호\"\r\n"
            "B2,이별,010-1111-0002,부산 해운대구,덤\r\n"
            "B3,박서준\r\n"
            "B4,\"최\r\n유리\",010-1111-0004,\"경기 수원시 영통구\r\n광교로 145\"\r\n"
            "B5,정하나,010-1111-0005,\r\n")
    job = run_import("customers", "bakery", files.raw("ragged.csv", text.encode()))
    assert counts(job) == (5, 3, 0, 0, 2)
    assert [(row, code, value) for row, _column, value, code in row_errors(job)] == [(3, "ragged", "5 fields"), (4, "ragged", "2 fields")]
    assert by_source(units["bakery"], "B1").addresses.get().line == "테헤란로 1, 101호"
    choi = by_source(units["bakery"], "B4")
    assert choi.name == "최 유리"
    assert list(choi.addresses.values_list("sido", "sigungu", "line")) == [("경기도", "수원시 영통구", "광교로 145")]
    assert by_source(units["bakery"], "B5").name == "정하나"


def test_a_bad_row_after_a_multiline_value_is_reported_on_its_own_line(files, run_import):
    text = "성명,휴대폰,주소\r\n김하늘,010-1111-0001,\"서울\r\n강남구\"\r\n이별,010-123,\r\n"
    job = run_import("customers", "bakery", files.raw("lines.csv", text.encode()))
    assert row_errors(job) == [(4, "휴대폰", "010-123", "phone_invalid")]


# --- files that cannot be imported: one clear error, nothing written ---------------------------------------------

@pytest.mark.parametrize("name,data,message", [
    ("empty.csv", b"", "empty"),
    ("header.csv", "성명,휴대폰\r\n".encode(), "no data rows"),
    ("junk.csv", bytes(range(256)) * 4, "not a text table"),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), ".xls"),
    ("damaged.xlsx", b"PK\x03\x04" + bytes(100), "damaged"),
    ("latin1.csv", "name,phone\r\nMüller,010-1111-2222\r\nJosé,010-3333-4444\r\n".encode("latin-1"), "neither UTF-8 nor CP949"),
    ("sjis.csv", "name,phone\r\nテスト,010-1111-2222\r\n山田太郎,010-3333-4444\r\n".encode("shift_jis"), "neither UTF-8 nor CP949"),
    ("prose.csv", "Dear team\r\nplease find the list attached\r\n".encode(), "No column is mapped to"),
    ("columns.csv", "a,b,c\r\n1,2,3\r\n".encode(), "No column is mapped to"),
    ("nokey.csv", "성명,성별\r\n김하늘,여\r\n".encode(), "customer id, a phone or an email"),
])
def test_a_file_that_cannot_be_imported_fails_with_one_clear_error_and_writes_nothing(files, run_import, name, data, message):
    before = data_counts()
    with translation.override("en"):
        job = run_import("customers", "bakery", files.raw(name, data))
    assert job.status == JobStatus.FAILED
    assert message in job.error
    assert counts(job)[1:] == (0, 0, 0, 0)
    assert not RowError.objects.filter(job=job).exists()
    assert data_counts() == before


def test_mapping_problems_fail_the_job_and_write_nothing(files, run_import):
    path = files.csv("odd.csv", ["고객 성함", "HP", "메일 주소"], [["김하늘", "010-1111-2222", "kim@naver.com"]])
    before = data_counts()
    with translation.override("en"):
        unknown_column = run_import("customers", "bakery", path, mapping={"성명": "name", "HP": "phone"})
        unknown_field = run_import("customers", "bakery", path, mapping={"고객 성함": "name", "HP": "shoe_size"})
        twice = run_import("customers", "bakery", path, mapping={"고객 성함": "name", "HP": "phone", "메일 주소": "phone"})
        no_name = run_import("customers", "bakery", path, mapping={"HP": "phone"})
    assert "no column “성명”" in unknown_column.error
    assert "shoe_size" in unknown_field.error
    assert "Both “HP” and “메일 주소”" in twice.error
    assert "No column is mapped to Name" in no_name.error
    assert {job.status for job in (unknown_column, unknown_field, twice, no_name)} == {JobStatus.FAILED}
    assert data_counts() == before


def test_a_saved_mapping_is_reused_for_the_next_file_of_the_same_source(files, run_import, units):
    mapping = {"고객 성함": "name", "HP": "phone", "메일 주소": "email", "고객코드(POS)": "source_id"}
    profile = services.save_mapping(actor=Actor.system("test"), unit=units["bakery"], kind=ImportKind.CUSTOMERS,
                                    name="  POS  export ", mapping=mapping)
    assert profile.name == "POS export"
    path = files.csv("pos.csv", list(mapping), [["김하늘", "010-1111-2222", "KIM@naver.com", "P-1"]])
    assert run_import("customers", "bakery", path).status == JobStatus.FAILED  # nothing recognisable without it
    job = run_import("customers", "bakery", path, profile=profile)
    assert job.status == JobStatus.DONE and job.mapping == mapping
    assert counts(job) == (1, 1, 0, 0, 0)
    assert sorted(by_source(units["bakery"], "P-1").contacts.values_list("value", flat=True)) == ["+821011112222", "kim@naver.com"]


def test_a_mapping_needs_a_name_and_belongs_to_its_unit_and_kind(units):
    actor = Actor.system("test")
    for name in ("", "   ", "x" * 61):
        with pytest.raises(ValidationError):
            services.save_mapping(actor=actor, unit=units["bakery"], kind=ImportKind.CUSTOMERS, name=name, mapping={"a": "name"})
    profile = services.save_mapping(actor=actor, unit=units["bakery"], kind=ImportKind.CUSTOMERS, name="POS", mapping={"a": "name"})
    again = services.save_mapping(actor=actor, unit=units["bakery"], kind=ImportKind.CUSTOMERS, name="POS",
                                  mapping={"b": "name", "c": ""})
    assert again.pk == profile.pk and again.mapping == {"b": "name"}
    for unit, kind in ((units["seoul-hotel"], ImportKind.CUSTOMERS), (units["bakery"], ImportKind.ORDERS)):
        with pytest.raises(ValidationError):
            services.create_job(actor=actor, unit=unit, kind=kind, path="/nowhere.csv", profile=profile)


# --- XLSX ---------------------------------------------------------------------------------------------------------

def test_an_xlsx_with_excel_typed_numbers_and_dates(files, run_import, units):
    path = files.xlsx("hotel.xlsx", ["Member No", "Name", "Mobile", "Email", "Birthday", "Joined", "Postal code", "SMS consent"], [
        [5001, "김하늘", 1012345678, "KIM@Naver.com", dt.date(1990, 1, 31), dt.datetime(2024, 3, 1, 14, 30), 6236, "Y"],
        [None, None, None, None, None, None, None, None],
        [5002, "이별", "010-2222-3333", "", dt.datetime(1985, 12, 1), "2023-12-31", "06236", 1],
    ])
    job = run_import("customers", "seoul-hotel", path)
    assert job.encoding == "xlsx"
    assert counts(job) == (2, 2, 0, 0, 0), row_errors(job)
    kim = by_source(units["seoul-hotel"], "5001")
    assert sorted(kim.contacts.values_list("value", flat=True)) == ["+821012345678", "kim@naver.com"]
    assert list(kim.anniversaries.values_list("year", "month", "day")) == [(1990, 1, 31)]
    assert kim.joined_at == dt.datetime(2024, 3, 1, 14, 30, tzinfo=SEOUL)
    assert list(kim.addresses.values_list("postal_code", flat=True)) == ["06236"]  # Excel dropped the leading zero
    lee = by_source(units["seoul-hotel"], "5002")
    assert list(lee.anniversaries.values_list("year", "month", "day")) == [(1985, 12, 1)]
    assert current_consents(lee) == {("sms", "marketing"): True}


# --- idempotency ------------------------------------------------------------------------------------------------

IDEMPOTENT_ROWS = [
    ["B1", "김하늘", "010-1111-0001", "KIM@naver.com", "1990-01-31", "", "서울 강남구 테헤란로 1", "Y", "Y", "Y"],
    ["", "이별", "010-1111-0002", "", "85/12/01", "음력", "경기 수원시 영통구 광교로 145", "N", "", ""],
    ["", "박서준", "", "park@daum.net", "", "", "", "", "1", ""],
    ["B4", "최유리", "+82 10 1111 0004", "", "", "", "", "동의", "미동의", "N"],
    ["B5", "", "010-1111-0005", "", "", "", "", "", "", ""],  # rejected
]


def test_importing_the_same_file_again_changes_nothing(files, run_import, units):
    headers = ["회원번호", "성명", "휴대폰", "이메일", "생년월일", "음력", "주소", "SMS수신동의", "이메일수신동의", "야간수신동의"]
    path = files.csv("again.csv", headers, IDEMPOTENT_ROWS)  # no join date: the customers join at the import
    first = run_import("customers", "bakery", path)
    assert counts(first) == (5, 4, 0, 0, 1)
    before_counts = data_counts()
    before_values = {c.pk: values(c) for c in Customer.objects.all()}
    second = run_import("customers", "bakery", path)
    assert counts(second) == (5, 0, 0, 4, 1)
    third = run_import("customers", "bakery", path)
    assert counts(third) == (5, 0, 0, 4, 1)
    assert data_counts() == before_counts
    assert {c.pk: values(c) for c in Customer.objects.all()} == before_values  # source records still name the first job


def test_the_same_file_in_another_encoding_or_as_xlsx_is_the_same_data(files, run_import):
    headers = ["회원번호", "성명", "휴대폰", "이메일", "생년월일", "음력", "주소", "SMS수신동의", "이메일수신동의", "야간수신동의"]
    assert counts(run_import("customers", "bakery", files.csv("a.csv", headers, IDEMPOTENT_ROWS, encoding="cp949"))) == (5, 4, 0, 0, 1)
    before = data_counts()
    assert counts(run_import("customers", "bakery", files.csv("b.csv", headers, IDEMPOTENT_ROWS, encoding="utf-8-sig"))) == (5, 0, 0, 4, 1)
    assert counts(run_import("customers", "bakery", files.xlsx("c.xlsx", headers, IDEMPOTENT_ROWS))) == (5, 0, 0, 4, 1)
    assert data_counts() == before


# --- updates ------------------------------------------------------------------------------------------------------

def test_a_changed_row_updates_its_customer_and_a_new_phone_is_added_not_replaced(files, run_import, units):
    headers = ["회원번호", "성명", "휴대폰", "이메일", "주소", "생년월일"]
    run_import("customers", "bakery", files.csv("v1.csv", headers, [
        ["B1", "김하늘", "010-1111-0001", "", "서울 강남구 테헤란로 1", "1990-01-31"],
        ["B2", "이별", "010-1111-0002", "", "", ""]]))
    kim = by_source(units["bakery"], "B1")
    address_id = kim.addresses.get().pk
    job = run_import("customers", "bakery", files.csv("v2.csv", headers, [
        ["B1", "김하늘별", "010-9999-0001", "kim@naver.com", "부산 해운대구 해운대로 2", "1990-02-01"],
        ["B2", "이별", "010-1111-0002", "", "", ""]]))
    assert counts(job) == (2, 0, 1, 1, 0)
    kim.refresh_from_db()
    assert kim.name == "김하늘별"
    assert sorted(kim.contacts.values_list("kind", "value", "is_primary")) == [
        ("email", "kim@naver.com", True), ("phone", "+821011110001", True), ("phone", "+821099990001", False)]
    assert list(kim.addresses.values_list("pk", "sido", "sigungu", "line")) == [(address_id, "부산광역시", "해운대구", "해운대로 2")]
    assert list(kim.anniversaries.values_list("month", "day")) == [(2, 1)]
    assert Customer.objects.count() == 2
    # The old number still finds the customer on the next import.
    again = run_import("customers", "bakery", files.csv("v3.csv", ["성명", "휴대폰"], [["김하늘별", "010-1111-0001"]]))
    assert counts(again) == (1, 0, 0, 1, 0)


def test_an_imported_yes_does_not_override_the_customers_own_withdrawal_at_the_counter(files, run_import, units):
    headers = ["회원번호", "성명", "휴대폰", "이메일", "SMS수신동의", "이메일수신동의", "야간수신동의"]
    path = files.csv("v1.csv", headers, [["B1", "김하늘", "010-1111-0001", "", "Y", "Y", "Y"]])
    run_import("customers", "bakery", path)
    kim = by_source(units["bakery"], "B1")
    set_consent(actor=Actor.system("test"), customer=kim, channel="sms", purpose="marketing", granted=False,
                unit=units["bakery"], source="store", method="verbal at the counter")
    withdrawn = current_consents(kim)
    assert withdrawn[("sms", "marketing")] is False and withdrawn[("sms", "night_marketing")] is False
    assert counts(run_import("customers", "bakery", path)) == (1, 0, 0, 1, 0)  # the stale file again
    changed = files.csv("v2.csv", headers, [["B1", "김하늘", "010-1111-0001", "kim@naver.com", "Y", "N", "Y"]])
    assert counts(run_import("customers", "bakery", changed)) == (1, 0, 1, 0, 0)
    assert current_consents(kim) == {("sms", "marketing"): False, ("sms", "night_marketing"): False, ("email", "marketing"): False}
    # An imported "no" is recorded, with the import as its source.
    latest = kim.consents.filter(channel="email").order_by("-at", "-id").first()
    assert (latest.granted, latest.source) == (False, "import")


def test_an_imported_night_consent_is_not_granted_where_the_customer_withdrew_the_advertising_consent(
        files, run_import, units, make_customer):
    customer = make_customer("seoul-hotel", name="김하늘", phone="010-7777-8888", consents=[("sms", "marketing", True)])
    set_consent(actor=Actor.system("test"), customer=customer, channel="sms", purpose="marketing", granted=False,
                unit=units["seoul-hotel"], source="store")
    job = run_import("customers", "bakery", files.csv("b.csv", ["성명", "휴대폰", "SMS수신동의", "야간수신동의"],
                                                      [["김하늘", "010-7777-8888", "Y", "Y"]]))
    assert counts(job) == (1, 0, 1, 0, 0)  # matched: the membership is new
    consents = current_consents(customer)
    assert consents[("sms", "marketing")] is False
    assert consents.get(("sms", "night_marketing"), False) is False


def test_an_imported_no_withdraws_an_earlier_imported_yes(files, run_import, units):
    headers = ["회원번호", "성명", "휴대폰", "SMS수신동의"]
    run_import("customers", "bakery", files.csv("v1.csv", headers, [["B1", "김하늘", "010-1111-0001", "Y"]]))
    job = run_import("customers", "bakery", files.csv("v2.csv", headers, [["B1", "김하늘", "010-1111-0001", "N"]]))
    assert counts(job) == (1, 0, 1, 0, 0)
    kim = by_source(units["bakery"], "B1")
    assert current_consents(kim) == {("sms", "marketing"): False}
    assert kim.consents.count() == 2


# --- duplicates within the file and matching across units ---------------------------------------------------------

def test_the_same_customer_twice_in_one_file_is_imported_once(files, run_import, units):
    headers = ["회원번호", "성명", "휴대폰", "이메일"]
    rows = [
        ["B1", "김하늘", "010-1111-0001", ""],
        ["B1", "김하늘", "010-1111-0001", ""],    # the same member number
        ["", "이별", "010-1111-0002", ""],
        ["", "이 별", "010-1111-0002", ""],       # the same phone and name
        ["", "박서준", "", "park@daum.net"],
        ["", "박서준", "", "PARK@daum.net"],       # the same email and name
        ["", "박서연", "", "park@daum.net"],       # a family email: another person
        ["", "최유리", "010-1111-0003", ""],
        ["", "최민수", "010-1111-0003", ""],       # a family phone: another person
        ["B9", "정하나", "010-1111-0009", ""],
        ["", "정하나", "010-1111-0009", ""],       # the member again, without the number
    ]
    job = run_import("customers", "bakery", files.csv("dup.csv", headers, rows))
    assert counts(job) == (11, 7, 0, 0, 4)
    assert [(row, code) for row, _c, _v, code in row_errors(job)] == [(3, "duplicate_in_file"), (5, "duplicate_in_file"),
                                                                       (7, "duplicate_in_file"), (12, "duplicate_in_file")]
    assert "row 2" in RowError.objects.get(job=job, row=3).message_en
    assert RowError.objects.get(job=job, row=12).message_en.endswith("row 11 of this file.")
    assert Customer.objects.count() == 7
    again = run_import("customers", "bakery", files.csv("dup.csv", headers, rows))
    assert counts(again) == (11, 0, 0, 7, 4)


def test_a_customer_of_another_unit_is_matched_by_phone_and_name_and_gains_a_membership(files, run_import, units, make_customer):
    hotel_guest = make_customer("seoul-hotel", name="김하늘", phone="010-7777-8888")
    job = run_import("customers", "bakery", files.csv("b.csv", ["회원번호", "성명", "휴대폰", "SMS수신동의"],
                                                      [["B1", "김 하늘", "+82 10 7777 8888", "Y"]]))
    assert counts(job) == (1, 0, 1, 0, 0)
    assert Customer.objects.count() == 1
    assert set(hotel_guest.memberships.values_list("unit__code", "source")) == {("seoul-hotel", "registered"), ("bakery", "import")}
    assert by_source(units["bakery"], "B1") == hotel_guest
    assert current_consents(hotel_guest) == {("sms", "marketing"): True}
    assert counts(run_import("customers", "bakery", files.csv("b2.csv", ["회원번호", "성명", "휴대폰", "SMS수신동의"],
                                                              [["B1", "김 하늘", "+82 10 7777 8888", "Y"]]))) == (1, 0, 0, 1, 0)


def test_a_customer_of_another_unit_is_matched_by_email_and_name(files, run_import, make_customer):
    guest = make_customer("seoul-hotel", name="이별", phone="010-7777-0001", email="byul@naver.com")
    job = run_import("customers", "bakery", files.csv("b.csv", ["성명", "이메일"], [["이별", "BYUL@Naver.com"]]))
    assert counts(job) == (1, 0, 1, 0, 0)
    assert set(guest.memberships.values_list("unit__code", flat=True)) == {"seoul-hotel", "bakery"}
    assert Customer.objects.count() == 1


def test_the_same_phone_with_another_name_or_a_merged_record_is_not_a_match(files, run_import, make_customer):
    make_customer("seoul-hotel", name="김하늘", phone="010-7777-8888")
    merged = make_customer("seoul-hotel", name="이별", phone="010-7777-9999")
    survivor = make_customer("seoul-hotel", name="이별", phone="010-7777-0000")
    Customer.objects.filter(pk=merged.pk).update(merged_into=survivor)
    job = run_import("customers", "bakery", files.csv("b.csv", ["성명", "휴대폰"], [["김민수", "010-7777-8888"],
                                                                                   ["이별", "010-7777-9999"]]))
    assert counts(job) == (2, 2, 0, 0, 0)
    assert Customer.objects.count() == 5


# --- dry runs, reports, crashes -----------------------------------------------------------------------------------

def test_a_dry_run_writes_nothing_but_reports_what_the_real_run_does(files, run_import, make_customer):
    make_customer("seoul-hotel", name="김하늘", phone="010-1111-0001")
    path = files.csv("b.csv", ["회원번호", "성명", "휴대폰", "SMS수신동의"], [
        ["B1", "김하늘", "010-1111-0001", "Y"], ["B2", "이별", "010-1111-0002", "N"], ["B3", "", "010-1111-0003", ""],
        ["B2", "이별", "010-1111-0002", "N"]])
    before = data_counts()
    dry = run_import("customers", "bakery", path, dry_run=True)
    assert dry.status == JobStatus.DONE and dry.dry_run
    assert data_counts() == before
    assert row_errors(dry) == [(4, "성명", "", "name_missing"), (5, "회원번호", "", "duplicate_in_file")]
    real = run_import("customers", "bakery", path)
    assert counts(dry) == counts(real) == (4, 1, 1, 0, 2)
    assert row_errors(real) == row_errors(dry)
    assert AuditEvent.objects.filter(action="import.dry_run", object_id=str(dry.pk)).exists()


def test_the_error_report_gives_row_column_value_and_the_reason_in_korean_and_english(files, run_import):
    job = run_import("customers", "bakery", files.csv("b.csv", BAKERY_HEADERS, [
        member("B1"), member("B2", phone="010-123-45", email="yoon@"), member("B3", phone="010-2222-0003", name="")]))
    report = list(csv.reader(io.StringIO(services.error_report_csv(job))))
    assert report[0] == ["row", "column", "value", "code", "reason_ko", "reason_en"]
    assert [line[:4] for line in report[1:]] == [["3", "이메일", "yoon@", "email_invalid"], ["3", "휴대폰", "010-123-45", "phone_invalid"],
                                                 ["4", "성명", "", "name_missing"]]
    by_code = {line[3]: line for line in report[1:]}
    assert by_code["phone_invalid"][5] == "Not a valid phone number."
    assert by_code["name_missing"][5] == "The name is missing."
    with translation.override("ko"):
        assert by_code["phone_invalid"][4] == str(translation.gettext("Not a valid phone number."))
        assert by_code["email_invalid"][4] == str(translation.gettext("Not a valid email address."))
    path = services.write_error_report(job, files.directory / "report.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel opens it with the Korean intact


def test_the_error_report_does_not_turn_a_rejected_value_into_a_spreadsheet_formula(files, run_import):
    job = run_import("customers", "bakery", files.csv("b.csv", BAKERY_HEADERS, [
        member("B1", phone='=HYPERLINK("http://example.com/x","click")'), member("B2", phone="010-2222-0002", email="@cmd|'/c calc'!A1")]))
    assert counts(job) == (2, 0, 0, 0, 2)
    cells = [cell for line in csv.reader(io.StringIO(services.error_report_csv(job))) for cell in line]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]


@pytest.fixture
def phone_owned_once():
    """A rule the database enforces and the import does not know about (as a DBA might add): one owner per phone."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE UNIQUE INDEX test_one_owner_per_phone ON customers_contactpoint (value) WHERE kind = 'phone'")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS test_one_owner_per_phone")


def test_a_job_the_database_stops_midway_writes_nothing(files, run_import, make_customer, phone_owned_once):
    make_customer("seoul-hotel", name="김하늘", phone="010-7777-8888", consents=[("sms", "marketing", True)])
    before = data_counts()
    # Rows 2-3 are new customers written before the contact points; row 4 is another person with a known phone.
    path = files.csv("b.csv", ["회원번호", "성명", "휴대폰", "주소", "SMS수신동의"], [
        ["B1", "이별", "010-1111-0001", "서울 강남구 테헤란로 1", "Y"], ["B2", "박서준", "010-1111-0002", "", "N"],
        ["B3", "김민수", "010-7777-8888", "", "Y"]])
    with translation.override("en"):
        job = run_import("customers", "bakery", path)
    assert job.status == JobStatus.FAILED
    assert "wrote nothing" in job.error
    assert (job.created, job.updated, job.unchanged) == (0, 0, 0)
    assert data_counts() == before
    assert not RowError.objects.filter(job=job).exists()
    # The database is usable afterwards and the same file without the offending row imports.
    fixed = files.csv("b2.csv", ["회원번호", "성명", "휴대폰"], [["B1", "이별", "010-1111-0001"], ["B2", "박서준", "010-1111-0002"]])
    assert counts(run_import("customers", "bakery", fixed)) == (2, 2, 0, 0, 0)


def test_the_counts_always_add_up_to_the_rows_read(files, run_import, make_customer):
    make_customer("seoul-hotel", name="김하늘", phone="010-1111-0001")
    text = ("회원번호,성명,휴대폰\r\nB1,김하늘,010-1111-0001\r\nB2,이별,010-1111-0002\r\nB2,이별,010-1111-0002\r\n"
            "B3,,010-1111-0003\r\nB4,박,010-1111-0004,덤\r\n,,\r\n")
    for _ in range(2):
        job = run_import("customers", "bakery", files.raw("mix.csv", text.encode()))
        assert job.rows_read == 5
        assert_counts_add_up(job)
