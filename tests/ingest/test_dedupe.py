"""Probable duplicates by record linkage (ingest.dedupe): quality on the generator's duplicates, hand-made cases,
decisions that stick, the command, the task and bad input."""
import csv
import datetime as dt

import polars as pl
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.customers.models import Customer
from dangol.customers.services import DateParts
from dangol.demo.generator import generate
from dangol.demo.models import GeneratedDuplicate
from dangol.ingest import dedupe
from dangol.ingest.dedupe import DedupeError, comparison_columns, export_customers, romanised_key, run_dedupe
from dangol.ingest.models import CandidateStatus, DuplicateCandidate, Merge, SourceRecord
from dangol.ingest.tasks import dedupe_customers

pytestmark = pytest.mark.django_db
END = dt.datetime(2025, 6, 30, 15, 0, tzinfo=dt.timezone.utc)
SYSTEM = Actor.system("test")


def pair(a: Customer, b: Customer) -> tuple[int, int]:
    return (min(a.pk, b.pk), max(a.pk, b.pk))


def scored(result) -> dict[tuple[int, int], float]:
    return {(r["left_id"], r["right_id"]): r["match_probability"] for r in result.pairs.iter_rows(named=True)}


def precision_recall(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> tuple[float, float]:
    hits = len(found & truth)
    return (hits / len(found) if found else 1.0), (hits / len(truth) if truth else 1.0)


@pytest.fixture
def hand_cases(make_customer):
    """The cases people worry about, each a pair: (a, b)."""
    birthday = DateParts(year=1990, month=5, day=17)
    return {
        "romanised": (make_customer("bakery", name="Kim Minji", phone="010-3141-5926", gender="F"),
                      make_customer("seoul-hotel", name="김민지", phone="010-3141-5926", gender="F")),
        "spacing": (make_customer("bakery", name="박 서준", phone="010-2718-2818", gender="M"),
                    make_customer("restaurant", name="박서준", phone="010-2718-2818", gender="M")),
        "typo": (make_customer("bakery", name="이혜진", phone="010-1618-0339", birthday=birthday, gender="F",
                               sido="서울특별시", sigungu="마포구"),
                 make_customer("busan-hotel", name="이헤진", phone="", birthday=birthday, gender="F",
                               sido="서울특별시", sigungu="마포구")),
        # Same name and birthday (no year), other phones: maybe one person with a new number; a manager decides.
        "namesake": (make_customer("bakery", name="윤서연", phone="010-4242-1111", gender="F",
                                   birthday=DateParts(month=11, day=3)),
                     make_customer("restaurant", name="윤서연", phone="010-4242-2222", gender="F",
                                   birthday=DateParts(month=11, day=3))),
        # A father and his daughter give the same home phone: two people.
        "family": (make_customer("bakery", name="김영수", phone="02-555-1234", gender="M",
                                 birthday=DateParts(year=1962, month=2, day=10)),
                   make_customer("bakery", name="김지우", phone="02-555-1234", gender="F",
                                 birthday=DateParts(year=1994, month=8, day=21))),
    }


# --- quality on the generator's injected duplicates ------------------------------------------------------------------

def test_it_finds_the_generators_duplicates_with_high_precision_and_recall(units, hand_cases):
    generate(customers=5000, seed=42, end=END)
    truth = {(min(d, o), max(d, o)) for d, o in GeneratedDuplicate.objects.values_list("duplicate_id", "original_id")}
    assert len(truth) == 150

    dry = run_dedupe(actor=SYSTEM, dry_run=True)
    assert dry.trained and dry.merged == dry.queued == 0
    assert not Customer.objects.filter(merged_into__isnull=False).exists() and not DuplicateCandidate.objects.exists()

    result = run_dedupe(actor=SYSTEM)
    probabilities = scored(result)
    # Deterministic: the same data gives the same pairs and the same probabilities.
    assert probabilities == pytest.approx(scored(dry), abs=1e-9) and set(probabilities) == set(scored(dry))

    auto = {p for p, probability in probabilities.items() if probability >= dedupe.AUTO_MERGE_DEFAULT}
    found = set(probabilities)  # automatic + queued (everything at or above the review threshold)
    hand = {pair(*case) for case in hand_cases.values()}
    auto_precision, auto_recall = precision_recall(auto - hand, truth)
    precision, recall = precision_recall(found - hand, truth)
    print(f"automatic: precision {auto_precision:.3f} recall {auto_recall:.3f}; "
          f"automatic + queued: precision {precision:.3f} recall {recall:.3f}")
    assert precision >= 0.99 and recall >= 0.95
    assert auto_precision >= 0.99 and auto_recall >= 0.8

    # What was done matches what was found: one merge per automatic pair (the clusters here are pairs), the rest queued.
    assert result.candidates == len(probabilities) == result.auto_pairs + result.review_pairs
    assert result.merged == len(auto) == Merge.objects.filter(automatic=True).count()
    assert Customer.objects.filter(merged_into__isnull=False).count() == result.merged
    assert result.queued == DuplicateCandidate.objects.filter(status=CandidateStatus.OPEN).count() == len(found - auto)
    for merge in Merge.objects.all():
        assert pair(merge.survivor, merge.merged) in auto
        assert merge.match_probability == pytest.approx(probabilities[pair(merge.survivor, merge.merged)])
    for candidate in DuplicateCandidate.objects.all():
        assert candidate.left_id < candidate.right_id
        assert dedupe.REVIEW_DEFAULT <= candidate.match_probability < dedupe.AUTO_MERGE_DEFAULT
        assert set(candidate.agreements) == {"name", "phone", "email", "birth_date", "address", "gender"}
        assert set(candidate.agreements.values()) <= {"exact", "close", "different", "missing"}

    # The hand-made cases against a trained model.
    assert pair(*hand_cases["romanised"]) in found and pair(*hand_cases["spacing"]) in found
    assert pair(*hand_cases["typo"]) in found
    father, daughter = hand_cases["family"]
    assert pair(father, daughter) not in found
    assert Customer.objects.filter(pk__in=[father.pk, daughter.pk], merged_into__isnull=True).count() == 2

    # A second run (retrained on the cleaner data) merges nothing more and adds no second copy of a queued pair.
    queued = set(DuplicateCandidate.objects.values_list("left_id", "right_id"))
    again = run_dedupe(actor=SYSTEM)
    assert again.merged == 0 and set(scored(again)) <= queued
    assert set(DuplicateCandidate.objects.values_list("left_id", "right_id")) == queued


# --- hand-made cases with the default parameters (too little data to train) -----------------------------------------

def test_small_data_uses_the_default_model_and_gets_the_hand_cases_right(hand_cases):
    result = run_dedupe(actor=SYSTEM, dry_run=True)
    assert not result.trained and result.records == 10
    probabilities = scored(result)
    for name in ("romanised", "spacing", "typo"):
        assert probabilities[pair(*hand_cases[name])] >= dedupe.AUTO_MERGE_DEFAULT, name
    assert dedupe.REVIEW_DEFAULT <= probabilities[pair(*hand_cases["namesake"])] < dedupe.AUTO_MERGE_DEFAULT
    assert pair(*hand_cases["family"]) not in probabilities
    assert set(probabilities) == {pair(*hand_cases[name]) for name in ("romanised", "spacing", "typo", "namesake")}
    row = result.pairs.filter(pl.col("left_id") == min(c.pk for c in hand_cases["romanised"])).row(0, named=True)
    assert (row["name"], row["phone"], row["email"], row["gender"]) == ("close", "exact", "missing", "exact")


def test_data_with_too_few_sure_pairs_falls_back_to_the_default_model(hand_cases, monkeypatch):
    baseline = scored(run_dedupe(actor=SYSTEM, dry_run=True))
    monkeypatch.setattr(dedupe, "MIN_RECORDS_TO_TRAIN", 5)  # ten records would be trained on, but hold 4 sure pairs
    result = run_dedupe(actor=SYSTEM, dry_run=True)
    assert not result.trained and "train" in result.phase_seconds
    assert scored(result) == baseline


def test_a_run_merges_the_sure_pairs_and_queues_the_grey_zone(hand_cases):
    result = run_dedupe(actor=SYSTEM)
    for name in ("romanised", "spacing", "typo"):
        a, b = (Customer.objects.get(pk=c.pk) for c in hand_cases[name])
        assert {a.merged_into_id, b.merged_into_id} in ({None, a.pk}, {None, b.pk})
        merge = Merge.objects.get(merged__in=[a, b])
        assert merge.automatic and merge.match_probability >= dedupe.AUTO_MERGE_DEFAULT and merge.by is None
    namesake = DuplicateCandidate.objects.get()
    assert (namesake.left_id, namesake.right_id) == pair(*hand_cases["namesake"])
    assert namesake.status == CandidateStatus.OPEN
    assert namesake.agreements == {"name": "exact", "phone": "different", "email": "missing", "birth_date": "close",
                                   "address": "missing", "gender": "exact"}
    assert result.summary_line == "candidates: 4, merged: 3, queued: 1"


def test_a_cluster_merges_into_one_survivor(make_customer):
    a = make_customer("bakery", name="최유나", phone="010-7000-0001")
    b = make_customer("seoul-hotel", name="최 유나", phone="010-7000-0001", email="yuna@example.com")
    c = make_customer("restaurant", name="최유나", email="yuna@example.com")
    result = run_dedupe(actor=SYSTEM)
    assert result.merged == 2
    survivors = set(Customer.objects.filter(pk__in=[a.pk, b.pk, c.pk], merged_into__isnull=True).values_list("pk", flat=True))
    assert len(survivors) == 1
    survivor = survivors.pop()
    assert set(Customer.objects.filter(merged_into=survivor).values_list("pk", flat=True)) == {a.pk, b.pk, c.pk} - {survivor}


# --- decisions stick ------------------------------------------------------------------------------------------------

def test_a_pair_marked_not_the_same_is_never_merged_or_queued_again(hand_cases):
    a, b = hand_cases["spacing"]
    left, right = pair(a, b)
    DuplicateCandidate.objects.create(left_id=left, right_id=right, match_probability=0.5, match_weight=1.0,
                                      status=CandidateStatus.NOT_SAME, decided_at=timezone.now())
    result = run_dedupe(actor=SYSTEM)
    assert result.decided_pairs == 1
    assert Customer.objects.filter(pk__in=[a.pk, b.pk], merged_into__isnull=True).count() == 2
    decided = DuplicateCandidate.objects.get(left_id=left, right_id=right)
    assert decided.status == CandidateStatus.NOT_SAME and decided.match_probability == 0.5
    assert result.merged == 2 and result.queued == 1  # the romanised and typo pairs merged, the namesakes queued


def test_a_cluster_holding_a_not_the_same_pair_goes_to_the_queue(make_customer):
    a = make_customer("bakery", name="정다은", phone="010-7100-0001")
    b = make_customer("seoul-hotel", name="정 다은", phone="010-7100-0001")
    c = make_customer("restaurant", name="정다은", phone="010-7100-0001")
    DuplicateCandidate.objects.create(left_id=a.pk, right_id=c.pk, match_probability=0.9, match_weight=3.0,
                                      status=CandidateStatus.NOT_SAME)
    result = run_dedupe(actor=SYSTEM)
    assert result.merged == 0 and not Customer.objects.filter(merged_into__isnull=False).exists()
    assert set(DuplicateCandidate.objects.filter(status=CandidateStatus.OPEN).values_list("left_id", "right_id")) == {
        pair(a, b), pair(b, c)}
    assert result.queued == 2


def test_an_open_candidate_is_refreshed_not_duplicated(hand_cases):
    a, b = hand_cases["namesake"]
    left, right = pair(a, b)
    DuplicateCandidate.objects.create(left_id=left, right_id=right, match_probability=0.81, match_weight=2.0)
    run_dedupe(actor=SYSTEM)
    candidate = DuplicateCandidate.objects.get(left_id=left, right_id=right)
    assert candidate.status == CandidateStatus.OPEN and candidate.match_probability != 0.81
    assert candidate.agreements["name"] == "exact" and DuplicateCandidate.objects.count() == 1


def test_customer_ids_limit_what_is_acted_on(hand_cases):
    kim = hand_cases["romanised"][0]
    result = run_dedupe(actor=SYSTEM, customer_ids=[kim.pk])
    assert result.summary_line == "candidates: 1, merged: 1, queued: 0"
    assert Merge.objects.count() == 1 and not DuplicateCandidate.objects.exists()


# --- dry run and the pairs file ---------------------------------------------------------------------------------------

def test_a_dry_run_changes_nothing_and_writes_the_pairs_with_source_ids(hand_cases, units, tmp_path):
    a, b = hand_cases["romanised"]
    SourceRecord.objects.create(unit=units["bakery"], source_id="BK-0042", customer=a)
    SourceRecord.objects.create(unit=units["bakery"], source_id="BK-0001", customer=hand_cases["family"][0])
    path = tmp_path / "pairs.csv"
    result = run_dedupe(actor=SYSTEM, dry_run=True, pairs_path=str(path))
    assert (result.merged, result.queued, result.would_merge, result.would_queue) == (0, 0, 3, 1)
    assert not Merge.objects.exists() and not DuplicateCandidate.objects.exists()
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["source_id_1", "source_id_2", "match_probability"]
    assert len(rows) == 1 + result.candidates == 5
    by_pair = {frozenset(row[:2]): float(row[2]) for row in rows[1:]}
    assert by_pair[frozenset({"BK-0042", f"customer:{b.pk}"})] >= dedupe.AUTO_MERGE_DEFAULT
    namesakes = {f"customer:{c.pk}" for c in hand_cases["namesake"]}
    assert dedupe.REVIEW_DEFAULT <= by_pair[frozenset(namesakes)] < dedupe.AUTO_MERGE_DEFAULT
    assert [float(row[2]) for row in rows[1:]] == sorted((float(row[2]) for row in rows[1:]), reverse=True)


# --- romanisation -----------------------------------------------------------------------------------------------------

def test_romanised_names_meet_whatever_the_order_and_spelling():
    key = romanised_key("김민지")
    assert key == romanised_key("Kim Minji") == romanised_key("Minji Kim") == romanised_key("MIN-JI KIM") == "gim minji"
    assert romanised_key("이영희") == romanised_key("Lee Younghee") == romanised_key("Yi Yeong-hui")
    assert romanised_key("박은지") == romanised_key("Park Eunji")  # syllable by syllable, not "bageunji"
    assert romanised_key("최철수") == romanised_key("Choi Chulsoo")
    assert romanised_key("남궁민수") == romanised_key("Namgung Minsoo")
    assert romanised_key("김민지") != romanised_key("김민수")
    assert romanised_key("") is None and romanised_key(None) is None and romanised_key("王小明") is None


def test_comparison_columns_are_derived_per_column(make_customer):
    make_customer("bakery", name="김 민지", phone="010-3000-1234", email="MinJi.Kim@Example.com",
                  birthday=DateParts(month=3, day=9, is_lunar=True), sido="서울특별시", sigungu="강남구")
    row = comparison_columns(export_customers()).row(0, named=True)
    assert row["name_nospace"] == "김민지" and row["name_sorted"] == "김민지" and row["name_roman"] == "gim minji"
    assert len(row["name_jamo"]) == 8  # ㄱㅣㅁ ㅁㅣㄴ ㅈㅣ
    assert (row["phone_digits"], row["email"], row["email_local"]) == ("01030001234", "minji.kim@example.com", "minji.kim")
    assert (row["birth_md"], row["birth_year"], row["birth_ymd"]) == ("L0309", None, None)
    assert (row["district"], row["sido"]) == ("서울특별시 강남구", "서울특별시")


def test_the_export_keeps_awkward_values_and_leaves_merged_records_out(make_customer, units):
    odd = make_customer("bakery", name='Kim, "Minji" \\ 김', email="a.b+x@example.com")
    SourceRecord.objects.create(unit=units["bakery"], source_id='M-1,"x"', customer=odd)
    gone = make_customer("bakery", name="박하나")
    Customer.objects.filter(pk=gone.pk).update(merged_into=odd)
    rows = export_customers().to_dicts()
    assert [(r["id"], r["name"], r["email"], r["source_id"], r["birth_lunar"]) for r in rows] == [
        (odd.pk, 'Kim, "Minji" \\ 김', "a.b+x@example.com", 'M-1,"x"', 0)]


def test_a_blocking_key_shared_by_too_many_records_is_not_used_to_block(make_customer, settings):
    for i in range(dedupe.MAX_BLOCK_SIZE + 1):
        make_customer("bakery", name=f"손님{i:03d}", phone="02-123-4567")
    features = comparison_columns(export_customers())
    assert features["block_phone"].null_count() == features.height
    result = run_dedupe(actor=SYSTEM, dry_run=True)
    assert result.candidates == 0  # no quadratic blow-up, and different names on one shop phone are no match


# --- bad input --------------------------------------------------------------------------------------------------------

def test_no_customers_or_one_customer(make_customer, tmp_path):
    path = tmp_path / "pairs.csv"
    result = run_dedupe(actor=SYSTEM, pairs_path=str(path))
    assert (result.records, result.summary_line) == (0, "candidates: 0, merged: 0, queued: 0")
    assert path.read_text().splitlines() == ["source_id_1,source_id_2,match_probability"]
    make_customer("bakery", name="홍길동")
    result = run_dedupe(actor=SYSTEM)
    assert (result.records, result.summary_line) == (1, "candidates: 0, merged: 0, queued: 0")


def test_merged_records_are_left_out(hand_cases):
    a, b = hand_cases["spacing"]
    Customer.objects.filter(pk=b.pk).update(merged_into=a)
    result = run_dedupe(actor=SYSTEM, dry_run=True)
    assert result.records == 9 and pair(a, b) not in scored(result)


@pytest.mark.parametrize("review, auto", [(0.995, 0.99), (0, 0.99), (0.8, 1.5), ("high", 0.99)])
def test_bad_thresholds_are_refused(settings, review, auto):
    settings.DANGOL_DEDUPE_REVIEW, settings.DANGOL_DEDUPE_AUTO_MERGE = review, auto
    with pytest.raises(DedupeError, match="DANGOL_DEDUPE_REVIEW"):
        run_dedupe(actor=SYSTEM)


def test_running_out_of_memory_is_one_clear_error_and_changes_nothing(hand_cases, settings):
    settings.DANGOL_DEDUPE_MEMORY_LIMIT = "64KB"
    with pytest.raises(CommandError, match="ran out of memory .*DANGOL_DEDUPE_MEMORY_LIMIT"):
        call_command("dedupe")
    assert not Merge.objects.exists() and not DuplicateCandidate.objects.exists()


def test_the_thresholds_come_from_the_settings(hand_cases, settings):
    settings.DANGOL_DEDUPE_AUTO_MERGE = 1.0  # nothing is sure enough: everything goes to the queue
    result = run_dedupe(actor=SYSTEM)
    assert result.summary_line == "candidates: 4, merged: 0, queued: 4"


# --- the command and the task -----------------------------------------------------------------------------------------

def test_the_command_ends_with_the_counts(hand_cases, capsys, tmp_path):
    path = tmp_path / "pairs.csv"
    call_command("dedupe", "--dry-run", "--pairs", str(path))
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "candidates: 4, merged: 0, queued: 0"
    assert any("would merge 3 record(s) and queue 1 pair(s)" in line for line in out)
    assert len(path.read_text().splitlines()) == 5
    call_command("dedupe")
    assert capsys.readouterr().out.strip().splitlines()[-1] == "candidates: 4, merged: 3, queued: 1"


def test_the_command_fails_with_one_clear_line(tmp_path, settings):
    with pytest.raises(CommandError, match="folder .* does not exist"):
        call_command("dedupe", "--pairs", str(tmp_path / "missing" / "pairs.csv"))
    with pytest.raises(CommandError, match="is a folder"):
        call_command("dedupe", "--pairs", str(tmp_path))
    settings.DANGOL_DEDUPE_REVIEW = 0.999
    with pytest.raises(CommandError, match="thresholds"):
        call_command("dedupe")


def test_the_task_runs_a_dedupe(hand_cases):
    assert dedupe_customers.queue_name == "analytics"
    assert dedupe_customers.call() == "candidates: 4, merged: 3, queued: 1"
