"""Rules of an update by import that protect what other units and staff recorded, and what happens to the files."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.customers.models import Address, Consent, Customer
from dangol.customers.services import set_consent
from dangol.ingest import services
from dangol.ingest.models import ImportJob, JobStatus

pytestmark = pytest.mark.django_db

HEADERS = ["회원번호", "성명", "휴대폰", "주소", "우편번호", "SMS수신동의"]


def test_a_spacing_variant_of_the_name_does_not_overwrite_it(files, run_import):
    run_import("customers", "bakery", files.csv("a.csv", HEADERS, [["B1", "김하늘", "010-1234-5678", "", "", ""]]))
    job = run_import("customers", "bakery", files.csv("b.csv", HEADERS, [["B1", "김 하늘", "010-1234-5678", "", "", ""]]))
    assert (job.updated, job.unchanged) == (0, 1)
    assert Customer.objects.get().name == "김하늘"


def test_a_file_without_a_postal_code_keeps_the_stored_one(files, run_import):
    run_import("customers", "bakery", files.csv("a.csv", HEADERS, [["B1", "김하늘", "010-1234-5678", "서울 강남구 테헤란로 1", "06236", ""]]))
    run_import("customers", "bakery", files.csv("b.csv", HEADERS[:4], [["B1", "김하늘", "010-1234-5678", "서울 강남구 테헤란로 9"]]))
    address = Address.objects.get()
    assert (address.line, address.postal_code) == ("테헤란로 9", "06236")


def test_one_units_no_does_not_withdraw_a_consent_given_at_another_unit(files, run_import, units):
    run_import("customers", "seoul-hotel", files.csv("h.csv", HEADERS, [["H1", "김하늘", "010-1234-5678", "", "", "Y"]]))
    job = run_import("customers", "bakery", files.csv("b.csv", HEADERS, [["B1", "김하늘", "010-1234-5678", "", "", "N"]]))
    assert job.updated == 1  # linked to the bakery (a membership), consent untouched
    latest = Consent.objects.filter(channel="sms", purpose="marketing").order_by("-at", "-id").first()
    assert (latest.granted, latest.unit_id) == (True, units["seoul-hotel"].pk)
    # The same unit's own "no" does withdraw what its earlier import granted.
    run_import("customers", "seoul-hotel", files.csv("h2.csv", HEADERS, [["H1", "김하늘", "010-1234-5678", "", "", "N"]]))
    latest = Consent.objects.filter(channel="sms", purpose="marketing").order_by("-at", "-id").first()
    assert latest.granted is False


def test_a_withdrawal_at_the_counter_stands_against_an_imported_yes(files, run_import, units):
    run_import("customers", "bakery", files.csv("a.csv", HEADERS, [["B1", "김하늘", "010-1234-5678", "", "", "Y"]]))
    customer = Customer.objects.get()
    set_consent(actor=Actor.system("test"), customer=customer, channel="sms", purpose="marketing", granted=False,
                unit=units["bakery"], source="store")
    run_import("customers", "bakery", files.csv("b.csv", HEADERS, [["B1", "김하늘", "010-1234-5679", "", "", "Y"]]))
    latest = Consent.objects.filter(channel="sms", purpose="marketing").order_by("-at", "-id").first()
    assert (latest.granted, latest.source) == (False, "store")


def test_dangol_deletes_its_copy_after_a_real_run_and_never_the_owners_file(files, settings, tmp_path, units):
    settings.DATA_DIR = tmp_path / "data"
    actor = Actor.system("test")
    owners = files.csv("owners.csv", HEADERS, [["B1", "김하늘", "010-1234-5678", "", "", ""]])
    copy = services.copy_for_job(owners)
    job = services.run_job(services.create_job(actor=actor, unit=units["bakery"], kind="customers", path=copy), actor=actor)
    assert job.status == JobStatus.DONE and not copy.exists() and owners.exists()
    services.run_job(services.create_job(actor=actor, unit=units["bakery"], kind="customers", path=owners), actor=actor)
    assert owners.exists()


def test_pruning_removes_old_dry_run_files_and_abandoned_drafts(files, settings, tmp_path, units):
    settings.DATA_DIR = tmp_path / "data"
    actor = Actor.system("test")
    source = files.csv("m.csv", HEADERS, [["B1", "김하늘", "010-1234-5678", "", "", ""]])
    dry = services.run_job(services.create_job(actor=actor, unit=units["bakery"], kind="customers",
                                               path=services.copy_for_job(source), dry_run=True), actor=actor)
    draft = services.create_job(actor=actor, unit=units["bakery"], kind="customers", path=services.copy_for_job(source), draft=True)
    fresh = services.create_job(actor=actor, unit=units["bakery"], kind="customers", path=services.copy_for_job(source), draft=True)
    assert services.prune_uploads() == 0  # nothing is old yet
    long_ago = timezone.now() - dt.timedelta(days=8)
    ImportJob.objects.filter(pk__in=[dry.pk, draft.pk]).update(created_at=long_ago)
    assert services.prune_uploads() == 2
    assert not Path(dry.path).exists() and not Path(draft.path).exists() and Path(fresh.path).exists()
    assert ImportJob.objects.filter(pk=dry.pk).exists() and not ImportJob.objects.filter(pk=draft.pk).exists()
