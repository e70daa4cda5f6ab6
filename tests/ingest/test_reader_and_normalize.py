"""Reading import files (CSV in UTF-8/CP949, XLSX) and the column-wise normalisation rules, with property tests that
the vectorised rules agree value by value with the app's own per-value functions."""
from __future__ import annotations

import datetime as dt
import unicodedata
import zipfile

import polars as pl
import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import translation
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from dangol.core.phones import try_normalize_phone
from dangol.ingest import normalize as n
from dangol.ingest.fields import check_mapping, guess_mapping, header_key
from dangol.ingest.models import ImportKind
from dangol.ingest.reader import MAX_COLUMNS, UnreadableFile, decode, read_table

HEADERS = ["이름", "휴대폰", "주소"]


def rows_of(table) -> list[tuple]:
    """(line, *values) of each data row."""
    return [(row["__row"], *(row[h] for h in table.headers)) for row in table.frame.iter_rows(named=True)]


# --- files that are not an importable table ---------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"\r\n  \r\n\t", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"])
def test_an_empty_file_is_refused_as_empty(files, data):
    with pytest.raises(UnreadableFile, match="empty"):
        read_table(files.raw("empty.csv", data))


def test_a_header_without_rows_is_refused(files):
    with pytest.raises(UnreadableFile, match="no data rows"):
        read_table(files.raw("header.csv", "이름,휴대폰\r\n".encode()))
    with pytest.raises(UnreadableFile, match="no data rows"):
        read_table(files.xlsx("header.xlsx", ["이름", "휴대폰"], []))
    with pytest.raises(UnreadableFile, match="no data rows"):  # only blank lines under the header
        read_table(files.raw("blank-rows.csv", "이름,휴대폰\r\n\r\n\r\n".encode()))


@pytest.mark.parametrize("data", [bytes(range(256)) * 8, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(300),
                                  b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length 3 0 R >>\nstream\n\x00\xff\x10"])
def test_binary_junk_is_refused_as_not_a_table(files, data):
    with pytest.raises(UnreadableFile, match="not a text table"):
        read_table(files.raw("junk.csv", data))


def test_an_old_excel_file_is_refused_with_what_to_do(files):
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000)
    with pytest.raises(UnreadableFile, match=r"\.xls\b.*\.xlsx"):
        read_table(files.raw("members.xls", ole))


def test_a_damaged_xlsx_is_refused(files, tmp_path):
    good = files.xlsx("good.xlsx", HEADERS, [["김하늘", "010-1234-5678", ""]])
    data = good.read_bytes()
    with pytest.raises(UnreadableFile, match="damaged"):
        read_table(files.raw("truncated.xlsx", data[: len(data) // 2]))
    with pytest.raises(UnreadableFile, match="damaged"):
        read_table(files.raw("zeros.xlsx", b"PK\x03\x04" + bytes(200)))
    # A ZIP file that is not a workbook.
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("photo.txt", "not a workbook")
    with pytest.raises(UnreadableFile, match="not an Excel"):
        read_table(archive)
    # A workbook whose sheet XML is garbage.
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(broken, "w") as out:
        for item in source.infolist():
            content = source.read(item.filename)
            out.writestr(item, b"<worksheet><sheetData><row" if item.filename.startswith("xl/worksheets/") else content)
    with pytest.raises(UnreadableFile):
        read_table(broken)


@pytest.mark.parametrize("text,encoding", [
    ("name,city\r\nMüller,Köln\r\nJosé,São Paulo\r\n", "latin-1"),
    ("name,temperature\r\nÅsa,25°C\r\n", "latin-1"),              # every byte pair is also valid CP949
    ("name,phone\r\nÄrzte Ökonom,010\r\n", "cp1252"),
    ("name,phone\r\nテスト,010\r\n山田太郎,011\r\n", "shift_jis"),  # decodes as CP949 without an error
    ("name,phone\r\n張偉,010\r\n王芳,011\r\n李娜,012\r\n", "big5"),
])
def test_text_in_another_encoding_is_refused_with_what_to_do(files, text, encoding):
    with pytest.raises(UnreadableFile, match="neither UTF-8 nor CP949"):
        read_table(files.raw("other.csv", text.encode(encoding)))


def test_a_utf8_file_with_one_broken_byte_is_refused_not_read_as_cp949(files):
    data = "이름,휴대폰\r\n김하늘,010-1234-5678\r\n".encode() + b"\xed\x95\r\n"
    with pytest.raises(UnreadableFile, match="neither UTF-8 nor CP949"):
        read_table(files.raw("broken.csv", data))


def test_too_many_columns_is_not_an_export(files):
    headers = [f"c{i}" for i in range(MAX_COLUMNS + 1)]
    with pytest.raises(UnreadableFile, match="columns"):
        read_table(files.csv("wide.csv", headers, [["x"] * len(headers)]))


# --- encodings --------------------------------------------------------------------------------------------------

KOREAN_ROWS = [["김하늘", "010-1234-5678", "서울 강남구 테헤란로 1"], ["똠방각하", "010-2222-3333", "경기 수원시 영통구 광교로 145"]]


@pytest.mark.parametrize("encoding,expected", [("utf-8", "utf-8"), ("utf-8-sig", "utf-8"), ("cp949", "cp949"),
                                               ("euc-kr", "cp949"), ("utf-16", "utf-16")])
def test_korean_text_is_read_in_each_encoding_excel_writes(files, encoding, expected):
    rows = KOREAN_ROWS if encoding != "euc-kr" else KOREAN_ROWS[:1]  # 똠 is outside EUC-KR, only in CP949
    table = read_table(files.csv("members.csv", HEADERS, rows, encoding=encoding))
    assert table.encoding == expected
    assert table.headers == HEADERS  # no BOM left on the first header
    assert rows_of(table) == [(index + 2, *row) for index, row in enumerate(rows)]


def test_cp949_is_chosen_only_when_the_text_is_not_utf8():
    korean = "이름,휴대폰\r\n김하늘,010\r\n"
    assert decode(korean.encode("utf-8")) == (korean, "utf-8")
    assert decode(korean.encode("cp949")) == (korean, "cp949")
    assert decode(b"name,phone\r\nkim,010\r\n") == ("name,phone\r\nkim,010\r\n", "utf-8")


def test_decomposed_hangul_is_read_as_composed(files):
    nfd = unicodedata.normalize("NFD", "이름,휴대폰\r\n김하늘,010-1234-5678\r\n")
    assert nfd != unicodedata.normalize("NFC", nfd)
    table = read_table(files.raw("mac.csv", nfd.encode()))
    assert table.headers == ["이름", "휴대폰"]
    assert rows_of(table) == [(2, "김하늘", "010-1234-5678")]


# --- shapes of CSV ----------------------------------------------------------------------------------------------

def test_quoted_values_keep_their_commas_and_line_breaks_and_later_rows_keep_their_line_numbers(files):
    text = ('이름,주소,휴대폰\r\n'
            '김하늘,"서울 강남구 테헤란로 1, 101호",010-1111-2222\r\n'
            '"이 ""별"" 하늘","부산 해운대구\r\n해운대로 2",010-3333-4444\r\n'
            '박,"",010-5555-6666\r\n')
    table = read_table(files.raw("quoted.csv", text.encode()))
    assert rows_of(table) == [
        (2, "김하늘", "서울 강남구 테헤란로 1, 101호", "010-1111-2222"),
        (3, '이 "별" 하늘', "부산 해운대구\r\n해운대로 2", "010-3333-4444"),  # starts on line 3
        (5, "박", "", "010-5555-6666"),
    ]


@pytest.mark.parametrize("extra", ["more", "fewer"])
def test_ragged_rows_are_set_aside_with_their_line_and_field_count_and_the_rest_is_read(files, extra):
    bad = "이하늘,010-3333-4444,부산,덤" if extra == "more" else "이하늘"
    text = f"이름,휴대폰,주소\r\n김하늘,010-1111-2222,서울\r\n{bad}\r\n박,010-5555-6666,\r\n"
    table = read_table(files.raw("ragged.csv", text.encode()))
    assert table.ragged_rows == [(3, 4 if extra == "more" else 1)]
    assert rows_of(table) == [(2, "김하늘", "010-1111-2222", "서울"), (4, "박", "010-5555-6666", "")]
    assert table.row_count == 3


def test_blank_lines_and_rows_of_empty_fields_are_skipped_but_counted_in_line_numbers(files):
    text = "이름,휴대폰\r\n\r\n김하늘,010-1111-2222\r\n,\r\n\r\n박,010-5555-6666\r\n,\r\n,\r\n"
    table = read_table(files.raw("gaps.csv", text.encode()))
    assert rows_of(table) == [(3, "김하늘", "010-1111-2222"), (6, "박", "010-5555-6666")]
    assert table.row_count == 2


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_separator_is_recognised(files, delimiter):
    table = read_table(files.csv("sep.csv", HEADERS, KOREAN_ROWS, delimiter=delimiter))
    assert table.headers == HEADERS
    assert rows_of(table)[1] == (3, *KOREAN_ROWS[1])


def test_duplicate_and_blank_headers_get_the_same_names_in_the_preview_and_the_import(files):
    path = files.csv("dup.csv", ["이름", "이름", "", "휴대폰"], [["김", "이", "x", "010"]])
    full, preview = read_table(path), read_table(path, max_rows=10)
    assert full.headers == preview.headers == ["이름", "이름 (2)", "column 3", "휴대폰"]
    assert rows_of(full) == rows_of(preview) == [(2, "김", "이", "x", "010")]


def test_line_endings_do_not_matter(files):
    for ending in ("\n", "\r\n"):
        table = read_table(files.csv("lf.csv", HEADERS, KOREAN_ROWS, line_end=ending))
        assert rows_of(table) == [(2, *KOREAN_ROWS[0]), (3, *KOREAN_ROWS[1])]


# --- XLSX -------------------------------------------------------------------------------------------------------

def test_xlsx_numbers_and_dates_typed_as_excel_values_become_their_text(files):
    path = files.xlsx("typed.xlsx", ["회원번호", "이름", "휴대폰", "생년월일", "가입일", "우편번호"], [
        [1001, "김하늘", 1012345678, dt.date(1990, 1, 31), dt.datetime(2024, 3, 1, 14, 30), 6236],
        [None, None, None, None, None, None],  # an empty row left in the sheet
        ["B-2", "이별", "010-2222-3333", "1985.12.01", "2024-03-01", "06236"],
    ])
    table = read_table(path)
    assert table.encoding == "xlsx"
    assert rows_of(table) == [
        (2, "1001", "김하늘", "1012345678", "1990-01-31 00:00:00", "2024-03-01 14:30:00", "6236"),
        (4, "B-2", "이별", "010-2222-3333", "1985.12.01", "2024-03-01", "06236"),
    ]
    assert n.normalize_phones(pl.Series(["1012345678"])).to_list() == ["+821012345678"]
    assert _dates(["1990-01-31 00:00:00"]) == [dt.date(1990, 1, 31)]


# --- phones -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ("010-1234-5678", "+821012345678"),
    ("01012345678", "+821012345678"),
    ("010 1234 5678", "+821012345678"),
    ("010.1234.5678", "+821012345678"),
    ("(010) 1234-5678", "+821012345678"),
    ("+82 10-1234-5678", "+821012345678"),
    ("+82 010-1234-5678", "+821012345678"),
    ("+821012345678", "+821012345678"),
    ("1012345678", "+821012345678"),          # Excel dropped the leading zero
    (" 010-1234-5678 ", "+821012345678"),
    ("02-312-3456", "+8223123456"),
    ("212345678", "+82212345678"),
    ("031-123-4567", "+82311234567"),
    ("070-1234-5678", "+827012345678"),
    ("+1 650-253-0000", "+16502530000"),      # a foreign number goes through phonenumbers
    ("+44 20 7946 0958", "+442079460958"),
    ("０１０-１２３４-５６７８", "+821012345678"),  # full-width digits
    ("", ""),
    ("   ", ""),
    ("010-123-45", None),
    ("1234", None),
    ("phone", None),
    ("+82", None),
    ("010-1234-5678-9999", None),
])
def test_phone_numbers_become_e164(raw, expected):
    assert n.normalize_phones(pl.Series([raw])).to_list() == [expected]
    assert expected == ("" if not raw.strip() else try_normalize_phone(raw))


_SEPARATORS = st.sampled_from(["", "", "-", " ", ".", "(", ")", " - ", "/"])
_PREFIXES = st.sampled_from(["", "", "0", "010", "02", "031", "070", "080", "050", "0505", "1588", "+82", "+82 ", "+82 0",
                             "+82-10", "82", "82 10", "0082", "00", "+", "+1 ", "+44 ", "+86 ", "001 "])


@st.composite
def phone_texts(draw) -> str:
    prefix = draw(_PREFIXES)
    groups = draw(st.lists(st.text(alphabet="0123456789", min_size=1, max_size=5), min_size=1, max_size=4))
    separators = [draw(_SEPARATORS) for _ in groups]
    body = "".join(sep + group for sep, group in zip(separators, groups))
    padding = draw(st.sampled_from(["", " ", "  "]))
    return padding + prefix + body + padding


@hypothesis_settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(phone_texts() | st.text(alphabet="0123456789+-() .", max_size=16), min_size=1, max_size=25))
def test_normalize_phones_agrees_with_the_apps_phone_rule_value_by_value(values):
    expected = ["" if not value.strip() else try_normalize_phone(value) for value in values]
    assert n.normalize_phones(pl.Series(values, dtype=pl.Utf8)).to_list() == expected


# --- emails -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ("Kim.HaNeul@Naver.COM", "kim.haneul@naver.com"),
    ("  a+tag@Gmail.com ", "a+tag@gmail.com"),
    ("o'brien@example.ie", "o'brien@example.ie"),
    ("kim@한국.kr", "kim@한국.kr"),                  # IDN domain: as validate_email decides
    ("", ""),
    ("yoon@", None),
    ("@naver.com", None),
    ("kim@@naver.com", None),
    ("kim haneul@naver.com", None),
    ("kim@naver..com", None),
    ("kim@naver", None),
])
def test_emails_are_lower_cased_and_checked(raw, expected):
    assert n.normalize_emails(pl.Series([raw])).to_list() == [expected]


def _django_email(value: str) -> str | None:
    """What the staff form keeps: lower-cased, trimmed, valid for validate_email, and short enough for the column."""
    value = value.strip().lower()
    if not value:
        return ""
    try:
        validate_email(value)
    except ValidationError:
        return None
    return value if len(value) <= 254 else None


_LOCAL = st.text(alphabet="abcXYZ019._%+-'!#$&*/=?^`{|}~\"한é ", min_size=0, max_size=12)
_LABEL = st.text(alphabet="abcXYZ019-한_", min_size=0, max_size=10)


@st.composite
def email_texts(draw) -> str:
    labels = draw(st.lists(_LABEL, min_size=1, max_size=4))
    domain = ".".join(labels) + draw(st.sampled_from(["", ".", ".com", ".KR", ".c", ".co1", ".x-y", ".-"]))
    if draw(st.booleans()):
        domain = draw(st.sampled_from(["localhost", "[127.0.0.1]", "[::1]", "naver.com"]))
    return draw(st.sampled_from(["", " "])) + draw(_LOCAL) + draw(st.sampled_from(["@", "@", "@@", ""])) + domain


@hypothesis_settings(max_examples=400, deadline=None, database=None)
@given(st.lists(email_texts() | st.text(alphabet="aZ9.@-_+ 한", max_size=20), min_size=1, max_size=25))
def test_normalize_emails_agrees_with_djangos_validate_email_value_by_value(values):
    expected = [_django_email(value) for value in values]
    assert n.normalize_emails(pl.Series(values, dtype=pl.Utf8)).to_list() == expected


def test_an_email_too_long_for_the_column_is_invalid():
    long = "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".com"
    assert len(long) > 254
    assert n.normalize_emails(pl.Series([long])).to_list() == [None]


# --- names ------------------------------------------------------------------------------------------------------

def test_names_are_trimmed_collapsed_and_composed():
    decomposed = unicodedata.normalize("NFD", "  김   하늘 ")
    result = pl.DataFrame({"name": [decomposed, "\t이별\n", None]}).select(n.clean_text(pl.col("name"))).to_series().to_list()
    assert result == ["김 하늘", "이별", ""]
    assert all(unicodedata.is_normalized("NFC", value) for value in result)


# --- dates ------------------------------------------------------------------------------------------------------

TODAY = dt.date(2024, 6, 15)


def _dates(values: list[str], today: dt.date = TODAY) -> list[dt.date | None]:
    return n.with_date(pl.DataFrame({"d": values}), "d", "x", today).get_column("x_date").to_list()


@pytest.mark.parametrize("raw,expected", [
    ("1990-01-31", dt.date(1990, 1, 31)),
    ("1990.01.31", dt.date(1990, 1, 31)),
    ("1990.1.31.", dt.date(1990, 1, 31)),
    ("1990/1/31", dt.date(1990, 1, 31)),
    ("19900131", dt.date(1990, 1, 31)),
    ("90/01/31", dt.date(1990, 1, 31)),
    ("90.01.31", dt.date(1990, 1, 31)),
    ("900131", dt.date(1990, 1, 31)),
    ("1990년 1월 31일", dt.date(1990, 1, 31)),
    ("1990. 1. 31.", dt.date(1990, 1, 31)),
    ("1990-01-31 00:00:00", dt.date(1990, 1, 31)),  # a date cell from Excel
    (" 1990-01-31 ", dt.date(1990, 1, 31)),
    ("05/03/04", dt.date(2005, 3, 4)),               # two-digit years up to this year's are this century
    ("24/06/15", dt.date(2024, 6, 15)),
    ("25/01/01", dt.date(1925, 1, 1)),               # … later ones the last century
    ("99-12-31", dt.date(1999, 12, 31)),
    ("1990-02-30", None),
    ("1990-13-01", None),
    ("31/01/1990", None),
    ("January 31", None),
    ("", None),
])
def test_the_common_korean_date_formats_are_read(raw, expected):
    assert _dates([raw]) == [expected]


@pytest.mark.parametrize("rest,seconds,bad", [("", 0, False), ("14:30", 52200, False), ("09:05:07", 32707, False),
                                              ("14:30:00.123", 52200, False), ("24:00", 0, True), ("14:60", 0, True),
                                              ("오후 2시", 0, True)])
def test_time_of_day(rest, seconds, bad):
    frame = pl.DataFrame({"rest": [rest]})
    value, invalid = n.time_of_day(pl.col("rest"))
    assert frame.select(value.alias("v"), invalid.alias("bad")).row(0) == (seconds, bad)


@pytest.mark.parametrize("raw,seconds,bad", [
    ("2024-03-01", 0, False),
    ("2024.03.01 14:30", 52200, False),
    ("2024.03.01. 14:30", 52200, False),          # the Korean way of writing a date, then a time
    ("2024. 3. 1. 14:30", 52200, False),
    ("2024년 3월 1일 14:30", 52200, False),
    ("20240301 09:05:07", 32707, False),
    ("2024-03-01T14:30:00", 52200, False),
    ("2024-03-01 14:30:00.500", 52200, False),    # an Excel time with a fraction of a second
    ("2024-03-01 오후 2:30:00", 52200, False),     # Korean Excel's 12-hour clock
    ("2024-03-01 오전 9:05", 32700, False),
    ("2024-03-01 오전 12:05", 300, False),
    ("2024-03-01 오후 12:05", 43500, False),
    ("2024/03/01 2:30 PM", 52200, False),
    ("2024-03-01 25:00", 0, True),
    ("2024-03-01 13:30 PM", 0, True),
])
def test_a_date_with_a_time_gives_the_seconds_of_the_day(raw, seconds, bad):
    frame = n.with_date(pl.DataFrame({"d": [raw]}), "d", "x", TODAY)
    assert frame.select("x_date", "x_seconds", "x_time_bad").row(0) == (dt.date(2024, 3, 1), seconds, bad)


def test_a_korean_wall_clock_time_is_stored_in_utc():
    frame = pl.DataFrame({"d": [dt.date(2024, 3, 1)], "s": [14 * 3600 + 30 * 60]})
    value = frame.select(n.seoul_datetime(pl.col("d"), pl.col("s"))).item()
    assert value == dt.datetime(2024, 3, 1, 5, 30, tzinfo=dt.timezone.utc)


# --- yes/no ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,value,invalid", [
    ("Y", True, False), ("y", True, False), ("yes", True, False), ("동의", True, False), ("1", True, False),
    ("O", True, False), ("o", True, False), ("예", True, False), (" Y ", True, False),
    ("N", False, False), ("no", False, False), ("미동의", False, False), ("0", False, False), ("X", False, False),
    ("x", False, False), ("거부", False, False),
    ("", None, False), (None, None, False),
    ("maybe", None, True), ("?", None, True), ("2", None, True),
])
def test_yes_no_values(raw, value, invalid):
    frame = pl.DataFrame({"v": [raw]}, schema={"v": pl.Utf8})
    parsed, bad = n.yes_no(pl.col("v"))
    assert frame.select(parsed.alias("v"), bad.alias("bad")).row(0) == (value, invalid)


@pytest.mark.parametrize("raw,lunar,leap", [("음력", True, False), ("음", True, False), ("Y", True, False), ("lunar", True, False),
                                            ("윤달", True, True), ("윤", True, True), ("leap", True, True),
                                            ("양력", False, False), ("N", False, False), ("", None, False)])
def test_lunar_flags(raw, lunar, leap):
    frame = pl.DataFrame({"v": [raw]})
    parsed, bad = n.yes_no(pl.col("v"), yes=n.LUNAR_YES, no=n.LUNAR_NO)
    assert frame.select(parsed.alias("v"), bad.alias("bad")).row(0) == (lunar, False)
    assert (raw.lower() in n.LEAP) is leap


# --- addresses ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ("서울 강남구 테헤란로 1, 101호", ("서울특별시", "강남구", "테헤란로 1, 101호")),
    ("서울특별시 종로구 종로 1", ("서울특별시", "종로구", "종로 1")),
    ("경기 수원시 영통구 광교로 145", ("경기도", "수원시 영통구", "광교로 145")),
    ("경기도 성남시 분당구 판교역로 166", ("경기도", "성남시 분당구", "판교역로 166")),
    ("경기 가평군 가평읍 보납로 1", ("경기도", "가평군", "가평읍 보납로 1")),
    ("경기 하남시 미사대로 1", ("경기도", "하남시", "미사대로 1")),
    ("부산 해운대구", ("부산광역시", "해운대구", "")),
    ("세종 한누리대로 2130", ("세종특별자치시", "", "한누리대로 2130")),
    ("  제주도   제주시  첨단로 242 ", ("제주특별자치도", "제주시", "첨단로 242")),
    ("Seoul Gangnam-gu Teheran-ro 1", ("서울특별시", "", "Gangnam-gu Teheran-ro 1")),
    ("테헤란로 1", ("", "", "테헤란로 1")),
    ("", ("", "", "")),
])
def test_addresses_are_split_into_province_and_district(raw, expected):
    result = n.with_address(pl.DataFrame({"a": [raw]}), "a")
    assert result.select("sido", "sigungu", "address_line").row(0) == expected


# --- headers and mappings ----------------------------------------------------------------------------------------

def test_korean_and_english_headers_are_recognised():
    korean = ["회원번호", "성명", "핸드폰", "이메일", "생년월일", "음력", "주소", "가입일", "SMS 수신 동의(Y/N)", "이메일수신동의",
              "야간수신동의", "우편번호", "성별", "카카오톡 수신동의"]
    assert guess_mapping(korean, ImportKind.CUSTOMERS) == {
        "회원번호": "source_id", "성명": "name", "핸드폰": "phone", "이메일": "email", "생년월일": "birth_date",
        "음력": "birth_lunar", "주소": "address", "가입일": "joined_at", "SMS 수신 동의(Y/N)": "consent_sms",
        "이메일수신동의": "consent_email", "야간수신동의": "consent_night", "우편번호": "postal_code", "성별": "gender",
        "카카오톡 수신동의": "consent_kakao"}
    other = ["이름", "휴대폰", "전화번호", "E-mail", "Date of birth"]
    assert guess_mapping(other, ImportKind.CUSTOMERS) == {"이름": "name", "휴대폰": "phone", "E-mail": "email",
                                                          "Date of birth": "birth_date"}  # the first phone column wins
    english = ["Member No", "Name", "Mobile", "Email", "Birthday", "Lunar", "Address", "Joined", "SMS consent"]
    assert set(guess_mapping(english, ImportKind.CUSTOMERS).values()) == {
        "source_id", "name", "phone", "email", "birth_date", "birth_lunar", "address", "joined_at", "consent_sms"}
    orders = ["영수증번호", "회원번호", "거래일시", "상품코드", "수량", "단가", "구분", "원영수증번호", "채널"]
    assert list(guess_mapping(orders, ImportKind.ORDERS).values()) == [
        "order_no", "customer_source_id", "ordered_at", "sku", "quantity", "unit_price", "kind", "refund_of", "channel"]
    # The order file names its customer columns as the customer list does (a phone column left unmapped would import
    # every order without its customer).
    assert guess_mapping(["거래번호", "거래일자", "상품코드", "수량", "휴대폰 번호", "멤버십번호"], ImportKind.ORDERS) == {
        "거래번호": "order_no", "거래일자": "ordered_at", "상품코드": "sku", "수량": "quantity", "휴대폰 번호": "customer_phone",
        "멤버십번호": "customer_source_id"}
    assert header_key(unicodedata.normalize("NFD", "휴대폰 번호")) == "휴대폰번호"


def test_mapping_problems_are_each_named():
    headers = ["고객 성함", "HP", "메일"]
    assert check_mapping({"고객 성함": "name", "HP": "phone"}, headers, ImportKind.CUSTOMERS) == []
    problems = check_mapping({"없는열": "name", "HP": "shoe_size", "메일": "phone", "고객 성함": "phone"}, headers,
                             ImportKind.CUSTOMERS)
    text = " ".join(str(p) for p in problems)
    assert "없는열" in text and "shoe_size" in text and "Both" in text
    with translation.override("en"):
        assert [str(p) for p in check_mapping({"HP": "phone"}, headers, ImportKind.CUSTOMERS)] == [
            "No column is mapped to Name, which every row needs."]
    assert any("customer id, a phone or an email" in str(p) for p in check_mapping({"고객 성함": "name"}, headers, ImportKind.CUSTOMERS))
    missing = check_mapping({"HP": "order_no"}, headers, ImportKind.ORDERS)
    assert len(missing) == 3  # ordered_at, sku, quantity


def test_every_reason_has_an_english_and_a_korean_text():
    for code in n.MESSAGES:
        english, korean = n.message_pair(code, 7)
        assert english and korean
        assert "%(" not in english and "%(" not in korean
        with translation.override("ko"):
            expected_ko = str(n.MESSAGES[code]) % {"row": 7} if "%(row)s" in str(n.MESSAGES[code]) else str(n.MESSAGES[code])
        assert korean == expected_ko
    assert "row 12" in n.message_pair("duplicate_in_file", 12)[0]
