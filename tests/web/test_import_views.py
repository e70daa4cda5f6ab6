"""The import wizard through the test client: who may import, upload errors, mapping, dry run, result, report."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from dangol.core.models import AuditEvent
from dangol.customers.models import Customer
from dangol.ingest.models import ImportJob, JobStatus, MappingProfile

from tests.helpers import login

pytestmark = pytest.mark.django_db

CSV = ("회원번호,성명,핸드폰,이메일,생년월일,SMS수신동의\n"
       "H1,김민지,010-1234-5678,minji@example.com,1990.01.31,Y\n"
       "H2,이서준,010-9876-5432,,900215,미동의\n"
       "H3,,010-2222-3333,,,\n").encode("cp949")


@pytest.fixture(autouse=True)
def tasks_run_inline(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
                                  "QUEUES": ["default", "analytics", "messages"]}}
    settings.DANGOL_DEDUPE_AFTER_IMPORT = False
    settings.DATA_DIR = settings.DATA_DIR  # uploads go under DATA_DIR/imports


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def upload(client, unit, content=CSV, name="members.csv", kind="customers", **extra):
    return client.post(reverse("web:import_start"), {"kind": kind, "unit": unit.pk,
                                                     "file": SimpleUploadedFile(name, content), **extra})


def test_it_refuses_staff(client, bora, units):
    login(client, bora)
    assert client.get(reverse("web:import_start")).status_code == 403
    assert upload(client, units["bakery"]).status_code == 403
    assert not ImportJob.objects.exists()


def test_it_offers_a_manager_only_her_units(client, mina, units):
    login(client, mina)
    response = client.get(reverse("web:import_start"))
    assert [u.code for u in response.context["form"].fields["unit"].queryset] == ["seoul-hotel"]
    response = upload(client, units["bakery"])
    assert response.status_code == 200 and "unit" in response.context["form"].errors
    assert not ImportJob.objects.exists()


def test_it_shows_why_a_file_cannot_be_read_and_keeps_nothing(client, mina, units, tmp_path):
    login(client, mina)
    client.cookies["django_language"] = "en"
    response = upload(client, units["seoul-hotel"], content=b"", name="empty.csv")
    assert response.status_code == 200
    assert response.context["form"].errors["file"]  # Django's own "The submitted file is empty."
    response = upload(client, units["seoul-hotel"], content=b"\x00\x01\x02binary\xff\xfe" * 50, name="x.csv")
    assert "not a text table" in response.context["form"].errors["file"][0]
    assert not ImportJob.objects.exists()
    assert not any((tmp_path / "imports").iterdir())


def test_it_previews_guesses_the_columns_and_imports_after_a_dry_run(client, mina, units, django_capture_on_commit_callbacks):
    login(client, mina)
    response = upload(client, units["seoul-hotel"])
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("web:import_map", args=[job.pk])
    page = client.get(response.url)
    assert page.context["preview"].encoding == "cp949"
    assert [c["field"] for c in page.context["columns"]] == ["source_id", "name", "phone", "email", "birth_date", "consent_sms"]
    assert "김민지" in page.content.decode()
    form = {f"col_{c['index']}": c["field"] for c in page.context["columns"]}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("web:import_map", args=[job.pk]), {**form, "dry_run": "on", "save_as": "PMS export"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.dry_run, job.counts_line) == (JobStatus.DONE, True, "read: 3, created: 2, updated: 0, unchanged: 0, rejected: 1")
    assert not Customer.objects.exists()
    assert MappingProfile.objects.get(name="PMS export").mapping["핸드폰"] == "phone"
    result = client.get(reverse("web:import_result", args=[job.pk])).content.decode()
    assert 'data-testid="count-created">2<' in result and "import-for-real" in result
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("web:import_again", args=[job.pk]))
    real = ImportJob.objects.exclude(pk=job.pk).get()
    assert response.url == reverse("web:import_result", args=[real.pk])
    real.refresh_from_db()
    assert (real.dry_run, real.created, real.rejected) == (False, 2, 1)
    assert Customer.objects.count() == 2
    # a job runs once: the same draft cannot be submitted again
    again = client.post(reverse("web:import_map", args=[job.pk]), form)
    assert again.status_code == 302 and Customer.objects.count() == 2


def test_it_lists_mapping_problems_and_queues_nothing(client, mina, units):
    login(client, mina)
    client.cookies["django_language"] = "en"
    upload(client, units["seoul-hotel"])
    job = ImportJob.objects.get()
    response = client.post(reverse("web:import_map", args=[job.pk]), {"col_0": "", "col_1": "", "col_2": "phone", "col_3": "phone"})
    problems = " ".join(response.context["problems"])
    assert "Name" in problems and "mapped to" in problems
    job.refresh_from_db()
    assert job.status == JobStatus.DRAFT


def test_the_error_report_is_a_download_with_both_languages_and_is_audited(client, mina, units, django_capture_on_commit_callbacks):
    login(client, mina)
    upload(client, units["seoul-hotel"])
    job = ImportJob.objects.get()
    form = {"col_0": "source_id", "col_1": "name", "col_2": "phone", "col_3": "email", "col_4": "birth_date", "col_5": "consent_sms"}
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("web:import_map", args=[job.pk]), form)
    response = client.get(reverse("web:import_errors", args=[job.pk]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = response.content.decode("utf-8-sig")
    assert text.splitlines()[0] == "row,column,value,code,reason_ko,reason_en"
    assert "4,성명,,name_missing,이름이 없습니다.,The name is missing." in text
    assert AuditEvent.objects.filter(action="import.error_report", object_id=str(job.pk), actor=mina).exists()


def test_a_manager_cannot_open_another_units_job(client, mina, alice, units, django_capture_on_commit_callbacks):
    login(client, alice)
    upload(client, units["bakery"])
    job = ImportJob.objects.get()
    login(client, mina)
    for name in ("web:import_map", "web:import_result", "web:import_errors"):
        assert client.get(reverse(name, args=[job.pk])).status_code == 404
    assert client.post(reverse("web:import_again", args=[job.pk])).status_code == 404


def test_actions_are_post_only(client, mina, units):
    login(client, mina)
    upload(client, units["seoul-hotel"])
    job = ImportJob.objects.get()
    assert client.get(reverse("web:import_again", args=[job.pk])).status_code == 405


def test_the_result_fragment_polls_until_done(client, mina, units):
    login(client, mina)
    upload(client, units["seoul-hotel"])
    job = ImportJob.objects.get()
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    fragment = client.get(reverse("web:import_result", args=[job.pk]) + "?poll=1", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in fragment and "<html" not in fragment
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.DONE)
    fragment = client.get(reverse("web:import_result", args=[job.pk]) + "?poll=1", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in fragment
