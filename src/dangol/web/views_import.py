"""The import wizard for managers: upload → preview and column mapping → (dry) run in the background → result
with counts and the error report. Thin: the ingest services read, check and write."""
from __future__ import annotations

from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dangol.core import audit
from dangol.core.audit import Actor
from dangol.core.selectors import units_for
from dangol.ingest import selectors as ingest_selectors
from dangol.ingest import services as ingest_services
from dangol.ingest.fields import fields_for
from dangol.ingest.models import ImportJob, ImportKind, JobStatus, MappingProfile
from dangol.ingest.reader import UnreadableFile

MAX_UPLOAD_MB = 200
ERRORS_SHOWN = 50


def importer_required(view):
    """Managers and admins import; staff get a 403 page."""
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not ingest_selectors.may_review(request.user):
            return render(request, "web/review/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return wrapped


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("What the file holds"), choices=ImportKind.choices)
    unit = forms.ModelChoiceField(label=gettext_lazy("Business unit"), queryset=None, empty_label=None)
    file = forms.FileField(label=gettext_lazy("File (CSV or XLSX)"),
                           widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.xlsx"}))
    profile = forms.ModelChoiceField(label=gettext_lazy("Saved column mapping"), queryset=None, required=False,
                                     empty_label=gettext_lazy("— recognise the columns —"))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        units = units_for(user)
        self.fields["unit"].queryset = units
        self.fields["profile"].queryset = MappingProfile.objects.filter(unit__in=units).select_related("unit")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_MB * 1024 * 1024:
            raise ValidationError(_("The file is larger than %(n)d MB: import it with the command line (dangol import).") % {"n": MAX_UPLOAD_MB})
        return upload

    def clean(self):
        data = super().clean()
        profile, unit, kind = data.get("profile"), data.get("unit"), data.get("kind")
        if profile and unit and (profile.unit_id != unit.pk or profile.kind != kind):
            self.add_error("profile", _("This saved mapping belongs to another unit or kind of import."))
        return data


def _job_or_404(request, job_id: int) -> ImportJob:
    job = ingest_selectors.import_jobs_for(request.user).filter(pk=job_id).first()
    if job is None:
        raise Http404
    return job


@importer_required
@require_http_methods(["GET", "POST"])
def import_start(request):
    form = UploadForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        path = ingest_services.keep_upload(form.cleaned_data["file"])
        job = ingest_services.create_job(actor=Actor.from_request(request), unit=form.cleaned_data["unit"],
                                         kind=form.cleaned_data["kind"], path=path, original_name=form.cleaned_data["file"].name,
                                         profile=form.cleaned_data["profile"], draft=True)
        try:
            ingest_services.preview(job)
        except UnreadableFile as exc:
            ingest_services.discard_draft(job)
            form.add_error("file", str(exc))
        else:
            return redirect("web:import_map", job_id=job.pk)
    jobs = ingest_selectors.import_jobs_for(request.user).select_related("unit", "created_by")[:20]
    return render(request, "web/import/start.html", {"form": form, "jobs": jobs})


@importer_required
@require_http_methods(["GET", "POST"])
def import_map(request, job_id: int):
    job = _job_or_404(request, job_id)
    if job.status != JobStatus.DRAFT:
        return redirect("web:import_result", job_id=job.pk)
    try:
        shown = ingest_services.preview(job)
    except UnreadableFile as exc:  # the file changed or vanished since the upload
        messages.error(request, str(exc))
        return redirect("web:import_start")
    choices = [("", _("— skip this column —"))] + [(f.key, str(f.label)) for f in fields_for(job.kind)]
    mapping = shown.mapping
    problems: list[str] = []
    if request.method == "POST":
        mapping = {header: request.POST.get(f"col_{index}", "") for index, header in enumerate(shown.headers)}
        known = {key for key, _label in choices}
        mapping = {h: k for h, k in mapping.items() if k in known}
        try:
            ingest_services.submit_job(actor=Actor.from_request(request), job=job, mapping=mapping,
                                       dry_run=request.POST.get("dry_run") == "on", save_as=request.POST.get("save_as", ""))
        except ValidationError as exc:
            problems = exc.messages
        else:
            return redirect("web:import_result", job_id=job.pk)
    columns = [{"index": i, "header": h, "field": mapping.get(h, ""), "samples": [row[i] for row in shown.rows[:3]]}
               for i, h in enumerate(shown.headers)]
    return render(request, "web/import/map.html", {
        "job": job, "preview": shown, "columns": columns, "choices": choices, "problems": problems,
        "required": [f.label for f in fields_for(job.kind) if f.required],
        "dry_run": request.POST.get("dry_run") == "on" if request.method == "POST" else True,
        "save_as": request.POST.get("save_as", job.profile.name if job.profile else ""),
    })


@importer_required
@require_GET
def import_result(request, job_id: int):
    job = _job_or_404(request, job_id)
    context = {"job": job, "finished": job.status in (JobStatus.DONE, JobStatus.FAILED),
               "errors": job.row_errors.all()[:ERRORS_SHOWN] if job.rejected else []}
    if request.htmx and request.GET.get("poll"):
        return render(request, "web/import/_status.html", context)
    return render(request, "web/import/result.html", context)


@importer_required
@require_POST
def import_again(request, job_id: int):
    job = _job_or_404(request, job_id)
    try:
        again = ingest_services.repeat_for_real(actor=Actor.from_request(request), job=job)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("web:import_result", job_id=job.pk)
    return redirect("web:import_result", job_id=again.pk)


@importer_required
@require_GET
def import_errors(request, job_id: int):
    job = _job_or_404(request, job_id)
    # The report quotes the file's values (names, phone numbers): reading it is a view of personal data.
    audit.record(actor=Actor.from_request(request), action="import.error_report", obj=job, fields=["row_errors"])
    response = HttpResponse(ingest_services.error_report_csv(job).encode("utf-8-sig"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
