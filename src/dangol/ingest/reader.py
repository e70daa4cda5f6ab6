"""Read an export (CSV in UTF-8 or CP949/EUC-KR, or XLSX) into a table of text columns.

Every cell stays text here: validation and normalisation happen in ``normalize`` where each bad value gets a row-level
error. A file that cannot be read as a table raises ``UnreadableFile`` with one clear message, and nothing is written.
"""
from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from django.utils.translation import gettext as _

MAX_COLUMNS = 200


class UnreadableFile(Exception):
    """The file is not a table Dangol can import; the message says why, for the person who uploaded it."""


@dataclass
class Table:
    frame: pl.DataFrame  # one Utf8 column per header, plus "__row": the row's line number (the header is line 1)
    headers: list[str]
    encoding: str
    ragged_rows: list[tuple[int, int]]  # (line number, field count) of rows whose field count differs from the header's

    @property
    def row_count(self) -> int:
        return self.frame.height + len(self.ragged_rows)


def read_table(path: str | Path, *, max_rows: int | None = None) -> Table:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(_("The file cannot be opened: %(reason)s") % {"reason": exc.strerror or exc})
    if not data.strip():
        raise UnreadableFile(_("The file is empty."))
    if data[:4] == b"PK\x03\x04":
        return _read_xlsx(path, data, max_rows)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise UnreadableFile(_("This is an old Excel (.xls) file. Save it as .xlsx or as CSV and import that."))
    text, encoding = decode(data)
    return _read_csv(text, encoding, max_rows)


def decode(data: bytes) -> tuple[str, str]:
    """UTF-8 (with or without BOM) or CP949 (which includes EUC-KR): Korean Excel saves CSV in CP949."""
    if data.startswith(b"\xef\xbb\xbf"):
        encodings = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ["utf-16"]
    else:
        encodings = ["utf-8", "cp949"]
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        if encoding == "cp949" and not _plausible_korean(text):
            break
        return unicodedata.normalize("NFC", text), {"utf-8-sig": "utf-8", "utf-16": "utf-16"}.get(encoding, encoding)
    if b"\x00" in data[:4096]:
        raise UnreadableFile(_("This is not a text table (CSV) or an Excel (.xlsx) file."))
    raise UnreadableFile(_("The file is neither UTF-8 nor CP949/EUC-KR text. Save it from Excel as “CSV UTF-8” and "
                           "import it again."))


def _plausible_korean(text: str) -> bool:
    """CP949 also decodes many files in other encodings without an error (Latin-1 "Å" or "°" before a letter, most
    Shift-JIS and Big5 text), as the rare Hangul syllables and symbols that Microsoft added to EUC-KR. Korean text
    hardly uses those, so when they make up a good part of the non-ASCII characters the file is in another encoding."""
    counts = Counter(ch for ch in text[:200_000] if ch > "\x7f")
    total = sum(counts.values())
    rare = sum(count for ch, count in counts.items() if not _in_euc_kr(ch))
    return rare < 2 or rare * 5 <= total


def _in_euc_kr(ch: str) -> bool:
    """In KS X 1001 (two bytes in EUC-KR; Python spells the other Hangul syllables as eight-byte jamo sequences)."""
    try:
        return len(ch.encode("euc_kr")) == 2
    except UnicodeEncodeError:
        return False


def _sniff_separator(first_line: str) -> str:
    counts = {sep: first_line.count(sep) for sep in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _headers(raw: list[str]) -> list[str]:
    headers, seen = [], {}
    for index, header in enumerate(raw):
        name = " ".join((header or "").split()) or _("column %(n)d") % {"n": index + 1}
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        else:
            seen[name] = 1
        headers.append(name)
    return headers


def _read_csv(text: str, encoding: str, max_rows: int | None) -> Table:
    text = text.lstrip("\ufeff")
    first_line = text.split("\n", 1)[0]
    separator = _sniff_separator(first_line)
    if max_rows is not None:
        return _read_csv_slow(text, separator, encoding, max_rows)
    data = text.encode("utf-8")
    try:
        frame = pl.read_csv(data, separator=separator, infer_schema=False, has_header=True, raise_if_empty=True)
    except pl.exceptions.NoDataError:
        raise UnreadableFile(_("The file is empty."))
    except (pl.exceptions.ComputeError, pl.exceptions.ShapeError):
        # Rows with more fields than the header: read it row by row so those rows can be reported, not dropped.
        return _read_csv_slow(text, separator, encoding, None)
    # The header names as the csv module reads them: polars renames a repeated header its own way ("name_duplicated_0"),
    # which would differ from the preview's (read row by row) and break a mapping chosen there.
    header_row = next(csv.reader(io.StringIO(text, newline=""), delimiter=separator), [])
    if len(header_row) != frame.width:
        return _read_csv_slow(text, separator, encoding, None)
    headers = _headers(header_row)
    _check_shape(headers, frame.height)
    frame.columns = headers
    if not _one_record_per_line(data, separator, len(headers), frame.height):
        return _read_csv_slow(text, separator, encoding, None)
    frame = frame.with_columns([pl.col(h).fill_null("") for h in headers])
    frame = frame.with_columns(pl.arange(2, frame.height + 2, dtype=pl.Int64).alias("__row"))
    # Rows of empty fields only (",,,,": what Excel saves for rows whose content was deleted) are not records.
    frame = frame.filter(pl.any_horizontal([pl.col(h).str.strip_chars() != "" for h in headers]))
    _check_shape(headers, frame.height)
    return Table(frame=frame, headers=headers, encoding=encoding, ragged_rows=[])


def _one_record_per_line(data: bytes, separator: str, width: int, records: int) -> bool:
    """True when every line is one record with exactly the header's number of fields. Then line numbers are exact
    and no short row hides among the empty values (the fast reader gives both as nulls). Otherwise (quoted line
    breaks, blank lines, short rows) the caller reads the file row by row with the csv module."""
    lines = pl.read_csv(data, has_header=False, separator="\x01", quote_char=None, infer_schema=False,
                        new_columns=["line"]).get_column("line").fill_null("")
    if lines.len() != records + 1:
        return False
    outside_quotes = lines.str.replace_all(r'"[^"]*"', "")
    separators = outside_quotes.str.count_matches(separator, literal=True)
    return bool((separators == width - 1).all())


def _has_multiline_values(frame: pl.DataFrame, headers: list[str]) -> bool:
    """Quoted values with line breaks shift line numbers: then count lines exactly with the csv module."""
    if not headers or frame.height == 0:
        return False
    return bool(frame.select(pl.any_horizontal([pl.col(h).str.contains("\n", literal=True) for h in headers])).to_series().any())


def _read_csv_slow(text: str, separator: str, encoding: str, max_rows: int | None) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        header_row = next(reader)
    except StopIteration:
        raise UnreadableFile(_("The file is empty."))
    except csv.Error as exc:
        raise UnreadableFile(_("The file is not a readable CSV table: %(reason)s") % {"reason": exc})
    headers = _headers(header_row)
    width = len(headers)
    rows: list[list[str]] = []
    lines: list[int] = []
    ragged: list[tuple[int, int]] = []
    last_line = reader.line_num
    try:
        for record in reader:
            # A record starts on the line after the previous one ended (a quoted value may span several lines).
            line, last_line = last_line + 1, reader.line_num
            if not any(field.strip() for field in record):
                continue  # a blank line, or a row of empty fields
            if len(record) != width:
                ragged.append((line, len(record)))
            else:
                rows.append(record)
                lines.append(line)
            if max_rows is not None and len(rows) + len(ragged) >= max_rows:
                break
    except csv.Error as exc:
        raise UnreadableFile(_("The file is not a readable CSV table (line %(line)d: %(reason)s).")
                             % {"line": reader.line_num, "reason": exc})
    _check_shape(headers, len(rows) + len(ragged))
    columns = list(zip(*rows)) if rows else [[] for _ in headers]
    frame = pl.DataFrame({h: pl.Series(h, list(col), dtype=pl.Utf8) for h, col in zip(headers, columns)})
    frame = frame.with_columns(pl.Series("__row", lines, dtype=pl.Int64))
    return Table(frame=frame, headers=headers, encoding=encoding, ragged_rows=ragged)


def _check_shape(headers: list[str], rows: int) -> None:
    if len(headers) > MAX_COLUMNS:
        raise UnreadableFile(_("The file has %(n)d columns; an export of customers or orders has far fewer. Is it a "
                               "table with a header row?") % {"n": len(headers)})
    if rows == 0:
        raise UnreadableFile(_("The file has a header row but no data rows."))


def _read_xlsx(path: Path, data: bytes, max_rows: int | None) -> Table:
    import fastexcel

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if "xl/workbook.xml" not in archive.namelist():
                raise UnreadableFile(_("This ZIP file is not an Excel (.xlsx) workbook."))
    except zipfile.BadZipFile:
        raise UnreadableFile(_("The Excel file is damaged and cannot be read."))
    try:
        reader = fastexcel.read_excel(data)
        sheet = reader.load_sheet(0, header_row=0, dtypes="string", n_rows=max_rows)
        frame = sheet.to_polars()
    except Exception as exc:  # fastexcel raises its own errors for damaged or empty sheets
        raise UnreadableFile(_("The Excel file cannot be read: %(reason)s") % {"reason": str(exc).splitlines()[0][:200]})
    headers = _headers([str(c) if not str(c).startswith("__UNNAMED__") else "" for c in frame.columns])
    frame.columns = headers
    frame = frame.with_columns([pl.col(h).cast(pl.Utf8).fill_null("") for h in headers])
    # Drop fully empty trailing rows that spreadsheets keep after edits.
    if headers:
        frame = frame.with_columns(pl.arange(2, frame.height + 2, dtype=pl.Int64).alias("__row"))
        frame = frame.filter(pl.any_horizontal([pl.col(h).str.strip_chars() != "" for h in headers]))
    _check_shape(headers, frame.height)
    return Table(frame=frame, headers=headers, encoding="xlsx", ragged_rows=[])
