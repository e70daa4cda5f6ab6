"""Probable duplicates among the live customers, by probabilistic record linkage (splink on DuckDB).

One run: export the live customers with one set-based query (``merged_into IS NULL``; on PostgreSQL streamed with
``COPY … TO STDOUT``), derive the comparison columns with polars, let splink block, train and score the pairs in an
in-process DuckDB, then act:

* a pair at or above ``settings.DANGOL_DEDUPE_AUTO_MERGE`` (default 0.99) is merged automatically: the connected
  components of those pairs merge into one survivor each (``ingest.merge.choose_survivor`` / ``merge_customers``,
  reversible);
* a pair in ``[DANGOL_DEDUPE_REVIEW, DANGOL_DEDUPE_AUTO_MERGE)`` (default 0.80) waits in the review queue
  (``DuplicateCandidate``) with its match weight and how each field compared;
* a pair a manager marked "not the same" (or already merged) is never queued or merged again, and a cluster that
  would join two records marked "not the same" goes to the queue instead of merging.

Why these defaults: 0.99 for automatic merges means at most one wrong merge in a hundred at the very edge and far
fewer on average (most automatic pairs score above 0.9999), and a merge can be undone; 0.80 for the queue asks a
manager about pairs that are clearly more likely than not the same person, without flooding the queue with coin
flips. On the generator's injected duplicates (1,000,000 customers, 30,000 duplicates) the automatic merges reach
precision 1.000 and recall 0.953, automatic + queued precision 0.998 and recall 0.9998 (bench/dedupe_bench.py).

The model. Blocking (which pairs are compared at all): same phone; same email; same name (spaces removed) and
birthday; same syllables in another order, or the same romanised name, and birthday; same surname and full birth
date (a typo in the given name); same name and the first or the last four digits of the phone (one digit mistyped).
A blocking key shared by more than ``MAX_BLOCK_SIZE`` records (a shop's own phone typed for walk-ins, a placeholder
email) is not used to block, so a run never explodes quadratically; such pairs are still compared when another rule
brings them together. Comparisons: name (exact / same syllables or same romanisation / one jamo apart / close),
phone (exact / one digit apart), email (exact / same local part or one character apart), birthday (exact / same day
and month, year missing / one digit apart or other year), district (same 시군구 / same 시도), gender. An exact name
is weighted by how common the name is (term frequencies: 김민준 says less than a rare name). A shared phone or email
is not: its count includes the pair itself, which would make a unique number look common in a small database;
people who share a phone (a family's home line) are told apart by name, birthday and gender instead.

Training, on at least ``MIN_RECORDS_TO_TRAIN`` records holding at least ``MIN_SURE_PAIRS_TO_TRAIN`` sure pairs: the
prior (probability that two random records match) from deterministic rules with an assumed recall of
``DETERMINISTIC_RECALL``; u (how often non-matches agree) by random sampling with a fixed seed, except for exact
name, phone and email, whose u is counted over all records (a shared phone is too rare for a sample to see); m (how
often matches agree) by expectation maximisation on the pairs sharing a phone and on those sharing name and
birthday. A level training never sees keeps its hand-set value; no m goes below ``M_FLOOR`` so that one unseen
kind of slip cannot veto a pair alone. Smaller or cleaner data sets use the hand-set parameters (too few pairs to
learn from). The same data gives the same pairs and probabilities.

Names: compared without spaces, as Hangul jamo (one misheard syllable, 희/히 or 연/현, is one edit), with the given
name's syllables sorted (민지/지민), and romanised (Revised Romanisation per syllable, korean-romanizer, then a loose
spelling key so that "Kim Minji", "Minji Kim" and 김민지 meet; common surname spellings such as Lee/Yi/Rhee are
mapped to their Hangul surname first).
"""
from __future__ import annotations

import csv
import functools
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field

import polars as pl
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext as _

from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit
from dangol.customers.models import Address, Anniversary, AnniversaryKind, ContactKind, ContactPoint, Customer

from .models import CandidateStatus, DuplicateCandidate, SourceRecord

logger = logging.getLogger(__name__)

AUTO_MERGE_DEFAULT = 0.99
REVIEW_DEFAULT = 0.80
MIN_RECORDS_TO_TRAIN = 1000
MIN_SURE_PAIRS_TO_TRAIN = 20  # pairs the deterministic rules must find for the data to teach the model anything
MAX_BLOCK_SIZE = 50  # records sharing one blocking key; above it the key is not used to block (see the docstring)
DETERMINISTIC_RECALL = 0.9  # share of all true pairs the deterministic rules below are assumed to find
U_SAMPLE_PAIRS = 2_000_000
SEED = 42
M_FLOOR = 0.005  # smallest m of a level: one match in 200 may show it even when training saw none
U_FLOOR = 1 / U_SAMPLE_PAIRS  # smallest u: "less than once in the sample"
MEMORY_LIMIT_DEFAULT = "2GB"  # DuckDB's working memory (settings.DANGOL_DEDUPE_MEMORY_LIMIT)
CSV_HEADER = ("source_id_1", "source_id_2", "match_probability")


class DedupeError(Exception):
    """The run cannot start (bad thresholds, unreadable database, unwritable pairs file); nothing was changed."""


@dataclass
class DedupeResult:
    """What one run found and did. ``candidates``: pairs scored at or above the review threshold (in scope);
    ``merged``: records merged into another; ``queued``: pairs put (or refreshed) in the review queue. A dry run
    merges and queues nothing and says what it would have done in ``would_merge`` / ``would_queue``."""

    candidates: int = 0
    merged: int = 0
    queued: int = 0
    seconds: float = 0.0
    peak_mb: float = 0.0
    records: int = 0
    auto_pairs: int = 0
    review_pairs: int = 0
    decided_pairs: int = 0  # left alone: a manager said "not the same", or merged before
    would_merge: int = 0
    would_queue: int = 0
    merge_errors: int = 0
    trained: bool = False
    phase_seconds: dict[str, float] = field(default_factory=dict)
    # Scored pairs at or above the review threshold, most probable first: left_id, right_id, match_probability,
    # match_weight and one column per compared field (exact / close / different / missing).
    pairs: pl.DataFrame | None = field(default=None, repr=False)

    @property
    def summary_line(self) -> str:
        return f"candidates: {self.candidates}, merged: {self.merged}, queued: {self.queued}"


def thresholds() -> tuple[float, float]:
    """(review, auto_merge) from settings, validated."""
    auto = getattr(settings, "DANGOL_DEDUPE_AUTO_MERGE", AUTO_MERGE_DEFAULT)
    review = getattr(settings, "DANGOL_DEDUPE_REVIEW", REVIEW_DEFAULT)
    try:
        auto, review = float(auto), float(review)
    except (TypeError, ValueError):
        raise DedupeError(_("DANGOL_DEDUPE_AUTO_MERGE and DANGOL_DEDUPE_REVIEW must be numbers between 0 and 1."))
    if not (0.0 < review <= auto <= 1.0):
        raise DedupeError(_("The dedupe thresholds must satisfy 0 < DANGOL_DEDUPE_REVIEW (%(review)s) ≤ "
                            "DANGOL_DEDUPE_AUTO_MERGE (%(auto)s) ≤ 1.") % {"review": review, "auto": auto})
    return review, auto


def run_dedupe(*, actor: Actor, dry_run: bool = False, pairs_path: str | None = None,
               customer_ids: Iterable[int] | None = None) -> DedupeResult:
    """Find probable duplicates among the live customers; merge the sure ones and queue the grey zone.

    ``customer_ids`` limits what is acted on (and written) to pairs involving at least one of these customers (e.g.
    the records an import just created); the model still compares them with everyone. ``pairs_path`` writes the
    pairs at or above the review threshold as CSV ``source_id_1,source_id_2,match_probability``: each side's first
    source id (``SourceRecord``, the unit's own member number), or ``customer:<id>`` for a record that has none.
    Raises DedupeError when the run cannot start."""
    review, auto = thresholds()
    scope = None if customer_ids is None else {int(pk) for pk in customer_ids}
    if pairs_path is not None:
        _check_writable(pairs_path)
    result = DedupeResult()
    started = time.perf_counter()
    with _peak_rss() as peak:
        with _phase(result, "export"):
            records = export_customers()
        result.records = records.height
        with _phase(result, "features"):
            features = comparison_columns(records)
            sources = records.select("id", "source_id")
            del records  # a million rows: keep only what the pairs file needs
        pairs = score_pairs(features, review_threshold=review, result=result)
        del features
        with _phase(result, "decide"):
            if scope is not None:
                pairs = pairs.filter(pl.col("left_id").is_in(list(scope)) | pl.col("right_id").is_in(list(scope)))
            pairs = pairs.sort(["match_probability", "left_id", "right_id"], descending=[True, False, False])
            result.candidates = pairs.height
            result.pairs = pairs
            if pairs_path is not None:
                _write_pairs_csv(pairs_path, pairs, sources)
            plan = _plan(pairs, auto_threshold=auto)
            result.auto_pairs, result.review_pairs = plan.auto_pairs, plan.review_pairs
            result.decided_pairs = plan.decided_pairs
            result.would_merge = sum(len(members) - 1 for members in plan.clusters)
            result.would_queue = len(plan.queue)
        if not dry_run:
            with _phase(result, "merge"):
                survivors = _merge_clusters(actor, plan, result)
            with _phase(result, "queue"):
                result.queued = _queue(plan, survivors)
    result.peak_mb = peak()
    result.seconds = time.perf_counter() - started
    logger.info("dedupe: %s records, %s (%.1fs, peak %.0f MB)", result.records, result.summary_line, result.seconds,
                result.peak_mb)
    return result


# --- export ---------------------------------------------------------------------------------------------------------

EXPORT_SCHEMA = {
    "id": pl.Int64, "name": pl.String, "gender": pl.String, "phone": pl.String, "email": pl.String,
    "birth_year": pl.Int32, "birth_month": pl.Int32, "birth_day": pl.Int32, "birth_lunar": pl.Int8,
    "sido": pl.String, "sigungu": pl.String, "home_unit": pl.String, "source_id": pl.String,
}


def _export_sql() -> str:
    q = connection.ops.quote_name
    customer, contact, anniversary = (q(m._meta.db_table) for m in (Customer, ContactPoint, Anniversary))
    address, unit, source = (q(m._meta.db_table) for m in (Address, BusinessUnit, SourceRecord))
    # Constants of our own code inlined (the COPY statement takes no parameters); no user value enters the text.
    phone, email, birthday = ContactKind.PHONE.value, ContactKind.EMAIL.value, AnniversaryKind.BIRTHDAY.value
    assert all(re.fullmatch(r"[a-z_]+", v) for v in (phone, email, birthday))
    return f"""
        SELECT c.id, c.name, c.gender, ph.value AS phone, em.value AS email,
               b.year AS birth_year, b.month AS birth_month, b.day AS birth_day,
               CASE WHEN b.is_lunar THEN 1 ELSE 0 END AS birth_lunar,
               a.sido, a.sigungu, u.code AS home_unit, sr.source_id
        FROM {customer} c
        LEFT JOIN {contact} ph ON ph.customer_id = c.id AND ph.kind = '{phone}' AND ph.is_primary
        LEFT JOIN {contact} em ON em.customer_id = c.id AND em.kind = '{email}' AND em.is_primary
        LEFT JOIN (SELECT customer_id, MIN(id) AS id FROM {anniversary} WHERE kind = '{birthday}'
                   GROUP BY customer_id) bf ON bf.customer_id = c.id
        LEFT JOIN {anniversary} b ON b.id = bf.id
        LEFT JOIN {address} a ON a.customer_id = c.id AND a.is_primary
        LEFT JOIN {unit} u ON u.id = c.home_unit_id
        LEFT JOIN (SELECT customer_id, MIN(id) AS id FROM {source} GROUP BY customer_id) sf ON sf.customer_id = c.id
        LEFT JOIN {source} sr ON sr.id = sf.id
        WHERE c.merged_into_id IS NULL
        ORDER BY c.id
    """


def export_customers() -> pl.DataFrame:
    """The live customers, one row each, with what the linkage compares (see EXPORT_SCHEMA)."""
    sql = _export_sql()
    if connection.vendor == "postgresql":
        return _export_postgresql(sql)
    return _export_with_cursor(sql)


def _export_postgresql(sql: str) -> pl.DataFrame:
    """COPY to a temporary file (constant memory on our side), read back by polars' multi-threaded CSV reader."""
    with tempfile.NamedTemporaryFile(prefix="dangol-dedupe-", suffix=".csv") as tmp:
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
                for chunk in copy:
                    tmp.write(chunk)
        tmp.flush()
        if os.path.getsize(tmp.name) == 0:
            return pl.DataFrame(schema=EXPORT_SCHEMA)
        frame = pl.read_csv(tmp.name, schema=EXPORT_SCHEMA)
    return frame


def _export_with_cursor(sql: str) -> pl.DataFrame:
    parts = []
    with connection.cursor() as cursor:
        cursor.execute(sql)
        while rows := cursor.fetchmany(50_000):
            parts.append(pl.DataFrame(rows, schema=EXPORT_SCHEMA, orient="row"))
    return pl.concat(parts) if parts else pl.DataFrame(schema=EXPORT_SCHEMA)


# --- comparison columns ---------------------------------------------------------------------------------------------

HANGUL = r"[\uac00-\ud7a3]"
DOUBLE_SURNAMES = ("남궁", "황보", "제갈", "선우", "독고", "사공", "서문", "동방")

# How people spell Korean surnames in Latin script → the surname. Used to romanise both sides the same way.
SURNAME_SPELLINGS: dict[str, str] = {}
for _hangul, _spellings in {
    "김": "kim gim", "이": "lee yi rhee ri rhie i rie", "박": "park pak bak bahk pahk", "최": "choi choe chey",
    "정": "jung jeong chung cheong jeung", "강": "kang gang", "조": "cho jo joh choh", "윤": "yoon yun",
    "장": "jang chang", "임": "lim im rim yim", "한": "han", "오": "oh o", "서": "seo suh", "신": "shin sin shinn",
    "권": "kwon gwon kwun", "황": "hwang whang", "안": "ahn an", "송": "song", "전": "jeon jun chun chon",
    "홍": "hong", "유": "yoo yu you", "고": "ko koh go", "문": "moon mun", "양": "yang", "손": "son sohn",
    "배": "bae pae bai", "백": "baek paik paek back baik", "허": "heo huh hur", "남": "nam", "심": "shim sim",
    "노": "noh roh no ro", "하": "ha", "곽": "kwak gwak", "성": "sung seong", "차": "cha", "주": "joo ju chu",
    "우": "woo wu", "구": "koo ku gu", "류": "ryu lyu", "민": "min", "진": "jin", "나": "na ra", "지": "ji chi",
    "엄": "eom um uhm", "채": "chae chai", "원": "won", "천": "cheon", "방": "bang", "공": "kong gong",
    "현": "hyun hyeon", "함": "ham", "변": "byun byeon pyun", "염": "yeom yum", "여": "yeo", "추": "choo",
    "도": "do doh", "석": "seok suk", "설": "seol sul", "마": "ma", "길": "gil kil", "연": "yeon", "위": "wi wee",
    "표": "pyo", "명": "myung myeong", "기": "ki gi", "남궁": "namgung namkung", "황보": "hwangbo",
    "제갈": "jegal", "선우": "sunwoo seonu sunwu",
}.items():
    for _spelling in _spellings.split():
        SURNAME_SPELLINGS.setdefault(_spelling, _hangul)
_SURNAME_RANK = {spelling: rank for rank, spelling in enumerate(SURNAME_SPELLINGS)}

# A loose spelling key: the usual ways of writing one Korean sound in Latin letters end up the same
# (gyeong/kyung, cheol/chul, hui/hee, u/woo, yeon/yun…). Applied in order to both sides.
_LOOSE_RULES = [("sh", "s"), ("ch", "j"), ("k", "g"), ("t", "d"), ("p", "b"), ("l", "r"), ("f", "b"), ("v", "b"),
                ("z", "j"), ("x", "s"), ("q", "g"), ("ee", "i"), ("oo", "u"), ("eo", "u"), ("ou", "u"), ("eu", "u"),
                ("ui", "i"), ("wu", "u"), ("ae", "e"), ("yi", "i")]


def loose_spelling(text: str) -> str:
    text = re.sub(r"[^a-z]", "", text.lower())
    for old, new in _LOOSE_RULES:
        text = text.replace(old, new)
    return re.sub(r"(.)\1+", r"\1", text)


@functools.lru_cache(maxsize=20_000)
def _romanised_syllable(syllable: str) -> str:
    from korean_romanizer.romanizer import Romanizer

    return Romanizer(syllable).romanize()


def romanised_key(name: str | None) -> str | None:
    """"gim minji" for 김민지, Kim Minji, Minji KIM and Min-ji Kim: the surname, a space, the given name, each in
    the loose spelling key. Syllables are romanised one by one (people spell 박은지 "Park Eunji", not "Bageunji")."""
    if not name:
        return None
    compact = "".join(name.split())
    if re.search(HANGUL, compact):
        syllables = "".join(re.findall(HANGUL, compact))
        surname_length = 2 if len(syllables) >= 3 and syllables[:2] in DOUBLE_SURNAMES else 1
        surname, given = syllables[:surname_length], syllables[surname_length:]
        romanised_surname = "".join(_romanised_syllable(s) for s in surname)
        romanised_given = "".join(_romanised_syllable(s) for s in given)
        return f"{loose_spelling(romanised_surname)} {loose_spelling(romanised_given)}".strip()
    tokens = [t for t in re.split(r"[\s,]+", re.sub(r"[-'.·]", "", name.lower())) if t]
    if not tokens or not all(re.fullmatch(r"[a-z]+", t) for t in tokens):
        return None  # another script: compared by the other name columns only
    known = [i for i in (0, len(tokens) - 1) if tokens[i] in SURNAME_SPELLINGS]
    if len(tokens) >= 2 and known:
        # "Minji Kim" or "Kim Minji"; when both ends could be a surname ("Min Kim"), the commoner surname wins.
        at = min(known, key=lambda i: (_SURNAME_RANK[tokens[i]], -i))
        surname = SURNAME_SPELLINGS[tokens[at]]
        given = "".join(t for i, t in enumerate(tokens) if i != at)
        romanised_surname = "".join(_romanised_syllable(s) for s in surname)
        return f"{loose_spelling(romanised_surname)} {loose_spelling(given)}"
    return " ".join(sorted(loose_spelling(t) for t in tokens))


def _name_columns(names: pl.Series) -> pl.DataFrame:
    """The name columns of each distinct name (a million customers carry a small fraction as many names)."""
    name = pl.col("name").str.normalize("NFC").str.strip_chars()
    nospace = name.str.replace_all(r"\s+", "").str.to_lowercase()
    frame = pl.DataFrame({"name": names}).with_columns(
        name_nospace=pl.when(nospace.str.len_chars() > 0).then(nospace),
        is_hangul=name.str.contains(HANGUL).fill_null(False),
        latin_sorted=name.str.to_lowercase().str.split(" ").list.sort().list.join(""),
    ).with_columns(
        name_jamo=pl.col("name_nospace").str.normalize("NFD"),
        # The given name's syllables in a fixed order: 김민지 and 김지민 share "김민지". Latin names: sorted tokens.
        name_sorted=pl.when(pl.col("name_nospace").is_null()).then(None).when(pl.col("is_hangul")).then(
            pl.col("name_nospace").str.slice(0, 1)
            + pl.col("name_nospace").str.slice(1).str.split("").list.sort().list.join("")
        ).otherwise(pl.col("latin_sorted")),
        surname=pl.when(pl.col("is_hangul")).then(pl.col("name_nospace").str.slice(0, 1)),
        name_roman=pl.Series([romanised_key(n) for n in names.to_list()], dtype=pl.String),
    )
    return frame.select("name", "name_nospace", "name_jamo", "name_sorted", "name_roman", "surname")


def comparison_columns(records: pl.DataFrame) -> pl.DataFrame:
    """The columns splink compares and blocks on, derived with vectorised polars expressions; the name columns
    (romanisation included) once per distinct name, not per customer."""
    frame = records.with_columns(
        phone_digits=pl.when(pl.col("phone").str.starts_with("+82"))
        .then(pl.lit("0") + pl.col("phone").str.slice(3))
        .otherwise(pl.col("phone").str.replace_all(r"\D", "")),
        email=pl.col("email").str.strip_chars().str.to_lowercase(),
        gender=pl.when(pl.col("gender").str.len_chars() > 0).then(pl.col("gender")),
        district=pl.when(pl.col("sigungu").str.len_chars() > 0).then(
            pl.concat_str([pl.col("sido").fill_null(""), pl.col("sigungu")], separator=" ")),
        sido=pl.when(pl.col("sido").str.len_chars() > 0).then(pl.col("sido")),
    ).with_columns(
        email_local=pl.col("email").str.split("@").list.first(),
        phone_digits=pl.when(pl.col("phone_digits").str.len_chars() > 0).then(pl.col("phone_digits")),
        birth_md=pl.when(pl.col("birth_month").is_not_null() & pl.col("birth_day").is_not_null()).then(
            pl.when(pl.col("birth_lunar").fill_null(0) == 1).then(pl.lit("L")).otherwise(pl.lit("S"))
            + pl.col("birth_month").cast(pl.String).str.zfill(2) + pl.col("birth_day").cast(pl.String).str.zfill(2)),
    ).with_columns(
        birth_ymd=pl.when(pl.col("birth_year").is_not_null() & pl.col("birth_md").is_not_null()).then(
            pl.col("birth_year").cast(pl.String) + pl.col("birth_md")),
        # One mistyped digit leaves either all but the last four digits or the last four as they were.
        phone_head=pl.when(pl.col("phone_digits").str.len_chars() >= 8).then(
            pl.col("phone_digits").str.slice(0, pl.col("phone_digits").str.len_chars() - 4)),
        phone_tail=pl.when(pl.col("phone_digits").str.len_chars() >= 8).then(pl.col("phone_digits").str.slice(-4)),
    )
    names = _name_columns(frame.get_column("name").unique().drop_nulls().sort())
    frame = frame.join(names, on="name", how="left", maintain_order="left")
    blocking_keys = {
        "block_phone": pl.col("phone_digits"),
        "block_email": pl.col("email"),
        "block_name_birth": pl.concat_str([pl.col("name_nospace"), pl.col("birth_md")], separator="|"),
        "block_sorted_birth": pl.concat_str([pl.col("name_sorted"), pl.col("birth_md")], separator="|"),
        "block_roman_birth": pl.concat_str([pl.col("name_roman"), pl.col("birth_md")], separator="|"),
        "block_surname_ymd": pl.concat_str([pl.col("surname"), pl.col("birth_ymd")], separator="|"),
        "block_name_phone_head": pl.concat_str([pl.col("name_nospace"), pl.col("phone_head")], separator="|"),
        "block_name_phone_tail": pl.concat_str([pl.col("name_nospace"), pl.col("phone_tail")], separator="|"),
    }
    frame = frame.with_columns(**blocking_keys).with_columns(**{
        key: pl.when(pl.len().over(key) <= MAX_BLOCK_SIZE).then(pl.col(key)) for key in blocking_keys
    })
    return frame.select(
        pl.col("id").alias("unique_id"), "name_nospace", "name_jamo", "name_sorted", "name_roman", "phone_digits",
        "email", "email_local", "birth_md", "birth_year", "birth_ymd", "district", "sido", "gender",
        *blocking_keys,
    )


# --- the model ------------------------------------------------------------------------------------------------------

EXACT, CLOSE, DIFFERENT, MISSING = "exact", "close", "different", "missing"


@dataclass(frozen=True)
class Level:
    sql: str
    label: str  # how the review page shows it
    agreement: str  # EXACT / CLOSE / DIFFERENT
    m: float  # hand-set parameters, used below MIN_RECORDS_TO_TRAIN and as EM's starting point
    u: float
    tf: str | None = None  # column of the term-frequency adjustment
    equal: str | None = None  # the level is plain equality of this column: its u is counted, not sampled


@dataclass(frozen=True)
class Field:
    name: str  # the key in DuplicateCandidate.agreements
    null_sql: str
    levels: tuple[Level, ...]  # most specific first; an ELSE level is added


def _jamo_distance(limit: int) -> str:
    return f"levenshtein(name_jamo_l, name_jamo_r) <= {limit}"


def _one_edit(column: str) -> str:
    """One typo (a character changed, added, dropped, or two swapped). DuckDB's damerau_levenshtein is several
    times slower than levenshtein; inside splink's CASE WHEN the cheap test filters the rows the costly one sees."""
    return f"(levenshtein({column}_l, {column}_r) <= 2 AND damerau_levenshtein({column}_l, {column}_r) <= 1)"


FIELDS = (
    Field("name", "name_nospace_l IS NULL OR name_nospace_r IS NULL", (
        Level("name_nospace_l = name_nospace_r", "same name", EXACT, 0.55, 0.0008, tf="name_nospace",
              equal="name_nospace"),
        Level("name_sorted_l = name_sorted_r OR name_roman_l = name_roman_r", "same syllables or romanisation",
              CLOSE, 0.22, 0.00002),
        Level(_jamo_distance(1), "one jamo apart", CLOSE, 0.15, 0.0004),
        Level(f"{_jamo_distance(2)} OR jaro_winkler_similarity(name_roman_l, name_roman_r) >= 0.9", "similar",
              CLOSE, 0.05, 0.01),
    )),
    Field("phone", "phone_digits_l IS NULL OR phone_digits_r IS NULL", (
        Level("phone_digits_l = phone_digits_r", "same phone", EXACT, 0.75, 0.00001, equal="phone_digits"),
        Level(_one_edit("phone_digits"), "one digit apart", CLOSE, 0.15, 0.0001),
    )),
    Field("email", "email_l IS NULL OR email_r IS NULL", (
        Level("email_l = email_r", "same email", EXACT, 0.85, 0.00001, equal="email"),
        Level(f"email_local_l = email_local_r OR {_one_edit('email')}",
              "same mailbox name or one character apart", CLOSE, 0.05, 0.0001),
    )),
    Field("birth_date", "birth_md_l IS NULL OR birth_md_r IS NULL", (
        Level("birth_md_l = birth_md_r AND birth_year_l = birth_year_r", "same birth date", EXACT, 0.85, 0.00005),
        Level("birth_md_l = birth_md_r AND (birth_year_l IS NULL OR birth_year_r IS NULL)",
              "same birthday, year unknown", CLOSE, 0.08, 0.003),
        Level(f"birth_md_l = birth_md_r OR {_one_edit('birth_ymd')}",
              "birthday one digit apart or other year", CLOSE, 0.04, 0.0005),
    )),
    Field("address", "district_l IS NULL OR district_r IS NULL", (
        Level("district_l = district_r", "same district", EXACT, 0.7, 0.03),
        Level("sido_l = sido_r", "same province", CLOSE, 0.15, 0.2),
    )),
    Field("gender", "gender_l IS NULL OR gender_r IS NULL", (
        Level("gender_l = gender_r", "same gender", EXACT, 0.97, 0.5),
    )),
)

BLOCKING_KEYS = ("block_phone", "block_email", "block_name_birth", "block_sorted_birth", "block_roman_birth",
                 "block_surname_ymd", "block_name_phone_head", "block_name_phone_tail")
# Rules that admit almost no false positives, to estimate the prior (probability two random records match).
# The capped blocking keys come first in each rule so that a placeholder value never makes a quadratic join.
_SAME_NAME_ROUGHLY = ("(l.name_sorted = r.name_sorted OR l.name_roman = r.name_roman "
                      "OR levenshtein(l.name_jamo, r.name_jamo) <= 1)")
DETERMINISTIC_RULES = (
    f"l.block_phone = r.block_phone AND {_SAME_NAME_ROUGHLY}",
    f"l.block_email = r.block_email AND {_SAME_NAME_ROUGHLY}",
    "l.block_name_birth = r.block_name_birth AND l.birth_ymd = r.birth_ymd "
    "AND levenshtein(l.phone_digits, r.phone_digits) <= 1",
)
# Expectation maximisation runs on these pairs; the comparisons whose columns a rule names are not learnt from it.
EM_RULES = (
    "l.block_phone = r.block_phone AND l.phone_digits = r.phone_digits",  # learns name, email, birthday, …
    "l.block_name_birth = r.block_name_birth AND l.name_nospace = r.name_nospace AND l.birth_md = r.birth_md",
)


def _default_prior(records: int) -> float:
    # Assume about 3% of the records are second records of someone: 0.03·n pairs among n(n−1)/2.
    return min(0.5, 0.06 / max(records - 1, 1))


def _settings(records: int, *, trained: bool) -> dict:
    comparisons = []
    for f in FIELDS:
        levels = [{"sql_condition": f.null_sql, "label_for_charts": MISSING, "is_null_level": True}]
        for level in f.levels:
            # A level training never sees (among random pairs for u, among the EM pairs for m) keeps these values.
            spec = {"sql_condition": level.sql, "label_for_charts": level.label, "m_probability": level.m,
                    "u_probability": level.u}
            if trained and level.tf:
                spec.update(tf_adjustment_column=level.tf, tf_adjustment_weight=1.0)
            levels.append(spec)
        levels.append({"sql_condition": "ELSE", "label_for_charts": "different", "m_probability":
                       max(1e-4, 1 - sum(lv.m for lv in f.levels)), "u_probability": max(1e-4, 1 - sum(lv.u for lv in f.levels))})
        comparisons.append({"output_column_name": f.name, "comparison_levels": levels})
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "unique_id",
        "probability_two_random_records_match": _default_prior(records),
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": [f"l.{key} = r.{key}" for key in BLOCKING_KEYS],
        "retain_matching_columns": True,  # keeps the gamma (how each field compared) columns in the output
        "retain_intermediate_calculation_columns": False,
        "max_iterations": 20,
        "em_convergence": 0.0001,
        "linker_uid": "dangol_dedupe",
    }


def score_pairs(features: pl.DataFrame, *, review_threshold: float, result: DedupeResult | None = None) -> pl.DataFrame:
    """Pairs scored at or above ``review_threshold``: left_id < right_id, match_probability, match_weight and one
    agreement column per field (EXACT / CLOSE / DIFFERENT / MISSING)."""
    result = result if result is not None else DedupeResult()
    empty = pl.DataFrame(schema={"left_id": pl.Int64, "right_id": pl.Int64, "match_probability": pl.Float64,
                                 "match_weight": pl.Float64, **{f.name: pl.String for f in FIELDS}})
    if features.height < 2:
        return empty
    import duckdb
    from splink import DuckDBAPI, Linker
    from splink.internals.exceptions import SplinkException

    workdir = tempfile.mkdtemp(prefix="dangol-dedupe-")
    # DuckDB spills to the work folder beyond its memory limit rather than taking the machine's memory.
    memory_limit = str(getattr(settings, "DANGOL_DEDUPE_MEMORY_LIMIT", MEMORY_LIMIT_DEFAULT))
    con = duckdb.connect(":memory:", config={"temp_directory": workdir, "memory_limit": memory_limit})
    try:
        with _quiet_splink():
            db_api = DuckDBAPI(connection=con)
            table = db_api.register(features.to_arrow(), dataset_display_name="customers")
            trained = features.height >= MIN_RECORDS_TO_TRAIN
            linker = Linker(table, _settings(features.height, trained=trained), log_level=None)
            if trained:
                with _phase(result, "train"):
                    try:
                        model = _train(linker, con, table.physical_name, features.height)
                        linker = Linker(db_api.register(table.physical_name, dataset_display_name="customers_scored"),
                                        model, log_level=None)
                        result.trained = True
                    except (SplinkException, _CannotTrain) as exc:  # too few pairs to learn from
                        logger.warning("dedupe: not trained (%s); using the default parameters",
                                       str(exc).strip().splitlines()[0])
                        linker = Linker(db_api.register(table.physical_name, dataset_display_name="customers_again"),
                                        _settings(features.height, trained=False), log_level=None)
            with _phase(result, "predict"):
                predictions = linker.inference.predict(threshold_match_probability=review_threshold,
                                                       warning_mode="never")
                gammas = ", ".join(f"gamma_{f.name}" for f in FIELDS)
                arrow = con.sql(
                    f"SELECT unique_id_l, unique_id_r, match_probability, match_weight, {gammas} "
                    f"FROM {predictions.physical_name} WHERE match_probability >= {float(review_threshold)!r}"
                ).to_arrow_table()
    except duckdb.OutOfMemoryException as exc:
        raise DedupeError(_("The linkage ran out of memory (DuckDB limit %(limit)s): raise "
                            "DANGOL_DEDUPE_MEMORY_LIMIT or free memory. %(detail)s")
                          % {"limit": memory_limit, "detail": str(exc).splitlines()[0]}) from exc
    finally:
        con.close()
        shutil.rmtree(workdir, ignore_errors=True)
    scored = pl.from_arrow(arrow)
    if scored.height == 0:
        return empty
    agreement = {}
    for f in FIELDS:
        labels = [MISSING, DIFFERENT, *(lv.agreement for lv in reversed(f.levels))]  # gamma -1, 0, 1, …
        agreement[f.name] = pl.col(f"gamma_{f.name}").replace_strict(list(range(-1, len(labels) - 1)), labels,
                                                                      return_dtype=pl.String)
    return scored.select(
        pl.min_horizontal("unique_id_l", "unique_id_r").cast(pl.Int64).alias("left_id"),
        pl.max_horizontal("unique_id_l", "unique_id_r").cast(pl.Int64).alias("right_id"),
        pl.col("match_probability").cast(pl.Float64),
        pl.col("match_weight").cast(pl.Float64),
        **agreement,
    ).unique(["left_id", "right_id"], keep="first", maintain_order=True)


class _CannotTrain(Exception):
    pass


def _equality_u(con, table: str, column: str) -> float | None:
    """Share of the pairs of records (both with a value) that have the same value, counted over all of them: the
    u of an exact match on a near-unique identifier such as a phone is far too rare for random sampling to see."""
    shared, present = con.sql(
        f"SELECT sum(n * (n - 1))::DOUBLE, sum(n)::DOUBLE FROM "
        f"(SELECT count(*) AS n FROM {table} WHERE {column} IS NOT NULL GROUP BY {column})").fetchall()[0]
    if not present or present < 2 or not shared:
        return None
    return shared / (present * (present - 1))


def _train(linker, con, table: str, records: int) -> dict:
    """Train the model and return it (splink's settings dictionary with the learnt parameters)."""
    training = linker.training
    training.estimate_probability_two_random_records_match(list(DETERMINISTIC_RULES), recall=DETERMINISTIC_RECALL)
    pairs = records * (records - 1) / 2
    prior = linker.misc.save_model_to_json()["probability_two_random_records_match"]
    if prior * DETERMINISTIC_RECALL * pairs < MIN_SURE_PAIRS_TO_TRAIN:
        # A nearly clean database: a prior learnt from a handful of pairs (or none: 0) would be noise.
        raise _CannotTrain(f"fewer than {MIN_SURE_PAIRS_TO_TRAIN} sure pairs")
    training.estimate_u_using_random_sampling(max_pairs=min(U_SAMPLE_PAIRS, pairs), seed=SEED)
    # m: among pairs sharing a phone (learns name, email, birthday, district, gender), then among pairs sharing
    # name and birthday (learns phone, email, district, gender).
    for rule in EM_RULES:
        training.estimate_parameters_using_expectation_maximisation(rule, estimate_without_term_frequencies=True)
    model = linker.misc.save_model_to_json()
    equal_u = {(f.name, lv.label): _equality_u(con, table, lv.equal) for f in FIELDS for lv in f.levels if lv.equal}
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            u = equal_u.get((comparison["output_column_name"], level.get("label_for_charts")))
            if u:
                level["u_probability"] = u
            # A level no match fell into while training (a typo the generator never makes, a gender that never
            # differs) would otherwise veto a pair by itself; real data has such slips.
            m = level.get("m_probability")
            if not isinstance(m, (int, float)) or m < M_FLOOR:
                level["m_probability"] = M_FLOOR
            u = level.get("u_probability")
            if not isinstance(u, (int, float)) or u < U_FLOOR:
                level["u_probability"] = U_FLOOR
    return model


# --- what to do with the pairs --------------------------------------------------------------------------------------

@dataclass
class _Plan:
    clusters: list[list[int]]  # each sorted; merged into one survivor
    probability: dict[tuple[int, int], float]  # of every auto pair
    queue: list[dict]  # left_id, right_id, match_probability, match_weight, agreements
    auto_pairs: int = 0
    review_pairs: int = 0
    decided_pairs: int = 0


def _plan(pairs: pl.DataFrame, *, auto_threshold: float) -> _Plan:
    decided = {(left, right): status for left, right, status in DuplicateCandidate.objects.exclude(
        status=CandidateStatus.OPEN).values_list("left_id", "right_id", "status")}
    not_same = [pair for pair, status in decided.items() if status == CandidateStatus.NOT_SAME]
    rows = pairs.to_dicts()
    open_rows = [r for r in rows if (r["left_id"], r["right_id"]) not in decided]
    auto = [r for r in open_rows if r["match_probability"] >= auto_threshold]
    grey = [r for r in open_rows if r["match_probability"] < auto_threshold]

    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r in auto:
        a, b = root(r["left_id"]), root(r["right_id"])
        if a != b:
            parent[max(a, b)] = min(a, b)
    members: dict[int, list[int]] = {}
    for x in list(parent):
        members.setdefault(root(x), []).append(x)
    # A cluster that would put together two records a manager called different people is not merged: its pairs go
    # to the queue, where the manager decides them one by one.
    refused = {root(a) for a, b in not_same if a in parent and b in parent and root(a) == root(b)}
    demoted = [r for r in auto if root(r["left_id"]) in refused]
    clusters = sorted((sorted(m) for key, m in members.items() if key not in refused), key=lambda m: m[0])
    queue = [_queue_row(r) for r in grey + demoted]
    return _Plan(clusters=clusters, probability={(r["left_id"], r["right_id"]): r["match_probability"] for r in auto},
                 queue=queue, auto_pairs=len(auto), review_pairs=len(grey), decided_pairs=len(rows) - len(open_rows))


def _queue_row(r: dict) -> dict:
    return {"left_id": r["left_id"], "right_id": r["right_id"], "match_probability": r["match_probability"],
            "match_weight": r["match_weight"], "agreements": {f.name: r[f.name] for f in FIELDS}}


def _merge_clusters(actor: Actor, plan: _Plan, result: DedupeResult) -> dict[int, int]:
    """Merge each cluster into its survivor, one reversible merge (one transaction) per record; return merged id →
    survivor id. A record merged meanwhile by someone else is skipped (merge_customers refuses it)."""
    from .merge import choose_survivor, merge_customers

    survivor_of: dict[int, int] = {}
    for start in range(0, len(plan.clusters), 500):
        batch = plan.clusters[start:start + 500]
        customers = Customer.objects.in_bulk([pk for members in batch for pk in members])
        for members in batch:
            records = [customers[pk] for pk in members if pk in customers]
            if len(records) < 2:
                continue
            survivor = records[0]
            for other in records[1:]:
                survivor, _merged = choose_survivor(survivor, other)
            for record in records:
                if record.pk == survivor.pk:
                    continue
                try:
                    merge_customers(actor=actor, survivor=survivor, merged=record, automatic=True,
                                    match_probability=_cluster_probability(plan, members, survivor.pk, record.pk))
                except ValidationError as exc:
                    result.merge_errors += 1
                    logger.warning("dedupe: customer #%s not merged into #%s: %s", record.pk, survivor.pk,
                                   "; ".join(exc.messages))
                    continue
                result.merged += 1
                survivor_of[record.pk] = survivor.pk
    return survivor_of


def _cluster_probability(plan: _Plan, members: list[int], survivor: int, merged: int) -> float:
    """The pair's own probability when it was scored, else the best of the merged record's automatic pairs."""
    direct = plan.probability.get((min(survivor, merged), max(survivor, merged)))
    if direct is not None:
        return direct
    return max(p for (a, b), p in plan.probability.items() if merged in (a, b) and a in members and b in members)


def _queue(plan: _Plan, survivor_of: dict[int, int]) -> int:
    """Upsert the grey-zone pairs into the review queue. A pair whose record was just merged is asked about the
    survivor instead; a pair already decided is left alone."""
    rows: dict[tuple[int, int], dict] = {}
    for row in plan.queue:
        a, b = survivor_of.get(row["left_id"], row["left_id"]), survivor_of.get(row["right_id"], row["right_id"])
        if a == b:
            continue
        key = (min(a, b), max(a, b))
        if key not in rows or rows[key]["match_probability"] < row["match_probability"]:
            rows[key] = {**row, "left_id": key[0], "right_id": key[1]}
    if not rows:
        return 0
    decided = set(DuplicateCandidate.objects.exclude(status=CandidateStatus.OPEN).values_list("left_id", "right_id"))
    fresh = [DuplicateCandidate(left_id=r["left_id"], right_id=r["right_id"], match_probability=r["match_probability"],
                                match_weight=r["match_weight"], agreements=r["agreements"])
             for key, r in sorted(rows.items()) if key not in decided]
    with transaction.atomic():
        DuplicateCandidate.objects.bulk_create(
            fresh, batch_size=1000, update_conflicts=True, unique_fields=["left", "right"],
            update_fields=["match_probability", "match_weight", "agreements"])
    return len(fresh)


# --- helpers --------------------------------------------------------------------------------------------------------

def _check_writable(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise DedupeError(_("%(path)s is a folder; give a file name for the pairs CSV.") % {"path": path})
    if not os.path.isdir(folder):
        raise DedupeError(_("Cannot write the pairs CSV: the folder %(folder)s does not exist.") % {"folder": folder})
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise DedupeError(_("Cannot write the pairs CSV to %(path)s: permission denied.") % {"path": path})


def _write_pairs_csv(path: str, pairs: pl.DataFrame, sources: pl.DataFrame) -> None:
    """source_id_1,source_id_2,match_probability: the first source id of each side, or customer:<id>."""
    ids = sources.select(
        pl.col("id"),
        pl.coalesce(pl.col("source_id"), pl.lit("customer:") + pl.col("id").cast(pl.String)).alias("source"))
    out = (pairs.select("left_id", "right_id", "match_probability")
           .join(ids.rename({"id": "left_id", "source": "source_id_1"}), on="left_id", how="left")
           .join(ids.rename({"id": "right_id", "source": "source_id_2"}), on="right_id", how="left")
           .select("source_id_1", "source_id_2", pl.col("match_probability").round(6)))
    tmp = f"{path}.part"
    try:
        out.write_csv(tmp, quote_style="necessary")
        if out.height == 0:  # polars writes the header of an empty frame too; make sure of it
            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerow(CSV_HEADER)
        os.replace(tmp, path)
    except OSError as exc:
        raise DedupeError(_("Cannot write the pairs CSV to %(path)s: %(reason)s")
                          % {"path": path, "reason": exc.strerror or exc}) from exc


@contextmanager
def _phase(result: DedupeResult, name: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        result.phase_seconds[name] = result.phase_seconds.get(name, 0.0) + time.perf_counter() - started


@contextmanager
def _quiet_splink():
    """splink explains every step at INFO; a dedupe run reports its own summary."""
    log = logging.getLogger("splink")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def _peak_rss(interval: float = 0.05):
    """Peak resident memory of this process while the block runs (sampled), in MB."""
    peak = [_rss_mb()]
    done = threading.Event()

    def sample():
        while not done.wait(interval):
            peak[0] = max(peak[0], _rss_mb())

    sampler = threading.Thread(target=sample, name="dedupe-rss", daemon=True)
    sampler.start()
    try:
        yield lambda: max(peak[0], _rss_mb())
    finally:
        done.set()
        sampler.join()
