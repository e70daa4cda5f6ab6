"""Privacy in the staff app: a customer's privacy page (consents in force with a one-click withdrawal, the consent
evidence, requests, export with a reason, suspension, erasure with a confirmation step, sensitive notes), the board
of data-subject requests against their ten-day deadline, and the access log for admins (monthly, CSV for audits).

Views parse, check, call a privacy service or selector and render; the rules live in ``dangol.privacy``."""
from __future__ import annotations

import csv
import datetime as dt
import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dangol.core import audit
from dangol.core.audit import Actor
from dangol.core.masking import mask_name
from dangol.customers import selectors as customer_selectors
from dangol.customers import services as customer_services
from dangol.customers.models import Channel, ConsentKind, ConsentSource, Interaction, Purpose
from dangol.privacy import selectors as privacy_selectors
from dangol.privacy import services as privacy
from dangol.privacy.export import build_export
from dangol.privacy.models import AccessReasonCode, DataSubjectRequest, ReceivedVia, RequestKind, RequestStatus

from .panels import Panel, customer_panel, nav_link
from .views import _customer_or_404, add_service_errors

nav_link("web:privacy_requests", gettext_lazy("Privacy"), who=lambda user: True, testid="nav-privacy")


# --- forms -----------------------------------------------------------------------------------------------------------

class ReasonForm(forms.Form):
    """Asked before every download of personal data; kept with the access log entry."""

    reason = forms.ChoiceField(label=gettext_lazy("Why do you need it?"), choices=[("", "—"), *AccessReasonCode.choices])
    reason_detail = forms.CharField(label=gettext_lazy("Explanation"), required=False, max_length=200)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reason") == AccessReasonCode.OTHER and not (cleaned.get("reason_detail") or "").strip():
            self.add_error("reason_detail", _("Explain the reason."))
        return cleaned


class ExportForm(ReasonForm):
    format = forms.ChoiceField(label=gettext_lazy("Format"), choices=[("html", gettext_lazy("Readable page")), ("json", "JSON")])


class RequestForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Request"), choices=RequestKind.choices)
    received_via = forms.ChoiceField(label=gettext_lazy("Received"), choices=ReceivedVia.choices)
    details = forms.CharField(label=gettext_lazy("What was asked"), required=False, max_length=2000,
                              widget=forms.Textarea(attrs={"rows": 2}))


class CorrectionForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Corrected name"), required=False, max_length=100)
    phone = forms.CharField(label=gettext_lazy("Corrected phone"), required=False, max_length=30)
    email = forms.CharField(label=gettext_lazy("Corrected email"), required=False, max_length=254)


class OutcomeForm(forms.Form):
    outcome = forms.CharField(label=gettext_lazy("Outcome told to the customer"), required=False, max_length=500)


class EraseForm(forms.Form):
    confirm = forms.CharField(label=gettext_lazy("Type the customer number to confirm"), max_length=20)


class SensitiveNoteForm(forms.Form):
    text = forms.CharField(label=gettext_lazy("Sensitive note"), max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))


def _forbidden(request):
    return render(request, "web/partials/forbidden.html", status=403)


def _actor(request) -> Actor:
    return Actor.from_request(request)


# --- the 360° panel --------------------------------------------------------------------------------------------------

@customer_panel(order=90)
def privacy_panel(request, customer):
    open_count = DataSubjectRequest.objects.filter(customer=customer, status__in=[RequestStatus.RECEIVED, RequestStatus.IN_PROGRESS]).count()
    return Panel("web/privacy/_customer_panel.html", {"customer": customer, "open_requests": open_count})


# --- a customer's privacy page ---------------------------------------------------------------------------------------

def _customer_page(request, customer, *, request_form=None, note_form=None, status=200):
    history = customer.consents.select_related("notice", "unit", "recorded_by").order_by("-at", "-id")[:200]
    return render(request, "web/privacy/customer.html", {
        "customer": customer,
        "masked_name": mask_name(customer.name),
        "in_force": privacy.consents_in_force(customer),
        "history": history,
        "requests": DataSubjectRequest.objects.filter(customer=customer).select_related("handled_by").order_by("-received_at"),
        "request_form": request_form or RequestForm(),
        "export_form": ExportForm(),
        "note_form": note_form or SensitiveNoteForm(),
        "sensitive_notes": Interaction.objects.filter(customer=customer, sensitive=True).select_related("created_by", "unit")
        .order_by("-occurred_at")[:50],
        "may_handle": privacy.may_handle_requests(request.user),
        "may_erase": privacy.may_erase(request.user),
        "grant_kinds": [(ConsentKind.REQUIRED, ConsentKind.REQUIRED.label), (ConsentKind.OPTIONAL, ConsentKind.OPTIONAL.label)],
        "channels": Channel.choices,
    }, status=status)


@login_required
@require_GET
def privacy_customer(request, customer_id: int):
    return _customer_page(request, _customer_or_404(request, customer_id))


@login_required
@require_POST
def privacy_withdraw(request, customer_id: int):
    """One click: the consent named by kind/channel/purpose is withdrawn now (recorded as at the counter)."""
    customer = _customer_or_404(request, customer_id)
    try:
        privacy.withdraw_consent(actor=_actor(request), customer=customer, kind=request.POST.get("kind", ""),
                                 channel=request.POST.get("channel", ""), purpose=request.POST.get("purpose", ""),
                                 source=ConsentSource.STORE,
                                 unit=customer_selectors.acting_unit(user=request.user, customer=customer))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Consent withdrawn."))
    return redirect("web:privacy_customer", customer_id=customer.pk)


@login_required
@require_POST
def privacy_grant(request, customer_id: int):
    """Record a required or optional consent given now, with the notice in force."""
    customer = _customer_or_404(request, customer_id)
    kind = request.POST.get("kind", "")
    try:
        if kind == ConsentKind.MARKETING:
            privacy.record_consent(actor=_actor(request), customer=customer, kind=kind, granted=True,
                                   channel=request.POST.get("channel", ""), purpose=Purpose.MARKETING,
                                   source=ConsentSource.STORE, method=request.POST.get("method", "")[:60],
                                   unit=customer_selectors.acting_unit(user=request.user, customer=customer))
        else:
            privacy.record_consent(actor=_actor(request), customer=customer, kind=kind, granted=True,
                                   source=ConsentSource.STORE, method=request.POST.get("method", "")[:60],
                                   unit=customer_selectors.acting_unit(user=request.user, customer=customer))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Consent recorded."))
    return redirect("web:privacy_customer", customer_id=customer.pk)


@login_required
@require_POST
def privacy_open_request(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    form = RequestForm(request.POST)
    if form.is_valid():
        try:
            dsr = privacy.open_request(actor=_actor(request), customer=customer, kind=form.cleaned_data["kind"],
                                       received_via=form.cleaned_data["received_via"], details=form.cleaned_data["details"],
                                       unit=customer_selectors.acting_unit(user=request.user, customer=customer))
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Request registered: answer by %(due)s.") % {
                "due": timezone.localtime(dsr.due_at).strftime("%Y-%m-%d")})
            return redirect("web:privacy_request", request_id=dsr.pk)
    return _customer_page(request, customer, request_form=form, status=422)


@login_required
@require_POST
def privacy_suspend(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    if not privacy.may_handle_requests(request.user):
        return _forbidden(request)
    suspended = request.POST.get("suspended") == "1"
    privacy.set_processing_suspended(actor=_actor(request), customer=customer, suspended=suspended)
    messages.success(request, _("Processing suspended.") if suspended else _("Processing resumed."))
    return redirect("web:privacy_customer", customer_id=customer.pk)


@login_required
@require_POST
def privacy_sensitive_note(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    form = SensitiveNoteForm(request.POST)
    if form.is_valid():
        try:
            customer_services.add_note(actor=_actor(request), customer=customer, text=form.cleaned_data["text"], sensitive=True,
                                       unit=customer_selectors.acting_unit(user=request.user, customer=customer))
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Sensitive note saved (encrypted)."))
            return redirect("web:privacy_customer", customer_id=customer.pk)
    return _customer_page(request, customer, note_form=form, status=422)


@login_required
@require_POST
@never_cache
def privacy_reveal_note(request, customer_id: int, note_id: int):
    """The text of a sensitive note, for managers and admins, each reading audited."""
    customer = _customer_or_404(request, customer_id)
    if not privacy.may_handle_requests(request.user):
        return _forbidden(request)
    note = Interaction.objects.filter(customer=customer, pk=note_id, sensitive=True).first()
    if note is None:
        raise Http404
    audit.record(actor=_actor(request), action="customer.view_sensitive_note", obj=customer, fields=[f"timeline.{note.pk}"])
    return render(request, "web/privacy/_note_text.html", {"note": note})


# --- export (access right) -------------------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
@never_cache
def privacy_export(request, customer_id: int):
    """GET: the reason form. POST: the export (readable page or JSON download), written to the access log with the
    reason."""
    customer = _customer_or_404(request, customer_id)
    if not privacy.may_handle_requests(request.user):
        return _forbidden(request)
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        fmt = form.cleaned_data["format"]
        privacy.record_access(actor=_actor(request), obj=customer, action=f"privacy.export_{fmt}",
                              reason=form.cleaned_data["reason"], reason_detail=form.cleaned_data["reason_detail"],
                              fields=["export"])
        data = build_export(customer)
        if fmt == "json":
            response = HttpResponse(json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="customer-{customer.pk}.json"'
            return response
        extra = [(name, json.dumps(rows, ensure_ascii=False, indent=1)) for name, rows in data.items() if name not in KNOWN_SECTIONS]
        return render(request, "web/privacy/export.html", {"customer": customer, "data": data, "extra_sections": extra})
    return render(request, "web/privacy/export_reason.html", {"customer": customer, "form": form},
                  status=422 if request.method == "POST" else 200)


KNOWN_SECTIONS = {"format", "exported_at", "profile", "contacts", "addresses", "anniversaries", "preferences", "memberships",
                  "consents", "orders", "timeline", "loyalty", "unit_ids", "privacy_requests"}


# --- erasure ---------------------------------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def privacy_erase(request, customer_id: int):
    """A confirmation page (what goes, what stays), then the erasure; admins only."""
    customer = _customer_or_404(request, customer_id)
    if not privacy.may_erase(request.user):
        return _forbidden(request)
    form = EraseForm(request.POST or None)
    if customer.erased_at:
        messages.error(request, _("This customer was erased already."))
        return redirect("web:privacy_customer", customer_id=customer.pk)
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["confirm"].strip().lstrip("#") != str(customer.pk):
            form.add_error("confirm", _("Type the customer number exactly as shown."))
        else:
            deletion = DataSubjectRequest.objects.filter(customer=customer, kind=RequestKind.DELETION,
                                                         status__in=[RequestStatus.RECEIVED, RequestStatus.IN_PROGRESS]).first()
            if deletion:
                privacy.complete_request(actor=_actor(request), request=deletion)
            else:
                privacy.erase_customer(actor=_actor(request), customer=customer)
            messages.success(request, _("The customer was erased. Orders are kept without identity."))
            return redirect("web:privacy_customer", customer_id=customer.pk)
    return render(request, "web/privacy/erase_confirm.html", {
        "customer": customer, "form": form,
        "counts": {
            "contacts": customer.contacts.count(), "addresses": customer.addresses.count(),
            "anniversaries": customer.anniversaries.count(), "preferences": customer.preferences.count(),
            "notes": customer.interactions.filter(kind__in=["note", "visit"]).count(),
            "orders": customer.orders.count(),
        },
    }, status=422 if request.method == "POST" else 200)


# --- requests board and a request ------------------------------------------------------------------------------------

@login_required
@require_GET
def privacy_requests(request):
    board = privacy_selectors.request_board(request.user)
    return render(request, "web/privacy/requests.html", {"board": board, "now": timezone.now(),
                                                         "may_handle": privacy.may_handle_requests(request.user),
                                                         "may_review_log": privacy.may_review_access_log(request.user)})


def _request_or_404(request, request_id: int) -> DataSubjectRequest:
    dsr = privacy_selectors.requests_for(request.user).filter(pk=request_id).first()
    if dsr is None:
        raise Http404
    return dsr


def _request_page(request, dsr, *, correction_form=None, outcome_form=None, status=200):
    return render(request, "web/privacy/request.html", {
        "dsr": dsr, "customer": dsr.customer, "masked_name": mask_name(dsr.customer.name),
        "correction_form": correction_form or CorrectionForm(), "outcome_form": outcome_form or OutcomeForm(),
        "may_handle": privacy.may_handle_requests(request.user), "may_erase": privacy.may_erase(request.user),
        "now": timezone.now(),
    }, status=status)


@login_required
@require_GET
def privacy_request(request, request_id: int):
    return _request_page(request, _request_or_404(request, request_id))


@login_required
@require_POST
def privacy_request_action(request, request_id: int, action: str):
    dsr = _request_or_404(request, request_id)
    if not privacy.may_handle_requests(request.user):
        return _forbidden(request)
    actor = _actor(request)
    outcome_form = OutcomeForm(request.POST)
    correction_form = CorrectionForm(request.POST) if action == "correct" else None
    try:
        if action == "start":
            privacy.start_request(actor=actor, request=dsr)
        elif action == "complete":
            if dsr.kind == RequestKind.DELETION:
                # Erasure has its own confirmation step.
                return redirect("web:privacy_erase", customer_id=dsr.customer_id)
            outcome_form.is_valid()
            privacy.complete_request(actor=actor, request=dsr, outcome=outcome_form.cleaned_data.get("outcome", ""))
        elif action == "refuse":
            outcome_form.is_valid()
            privacy.refuse_request(actor=actor, request=dsr, outcome=outcome_form.cleaned_data.get("outcome", ""))
        elif action == "correct" and correction_form.is_valid():
            privacy.apply_correction(actor=actor, request=dsr, **correction_form.cleaned_data)
        elif action != "correct":
            raise Http404
        else:
            return _request_page(request, dsr, correction_form=correction_form, status=422)
    except ValidationError as exc:
        target = correction_form if correction_form is not None else outcome_form
        if not hasattr(target, "cleaned_data"):
            target.is_valid()
        add_service_errors(target, exc)
        return _request_page(request, dsr, correction_form=correction_form, outcome_form=outcome_form, status=422)
    messages.success(request, _("Request updated."))
    return redirect("web:privacy_request", request_id=dsr.pk)


# --- access log (admins) ---------------------------------------------------------------------------------------------

def _month(raw: str) -> dt.date:
    try:
        month = dt.datetime.strptime((raw or "")[:7], "%Y-%m").date()
    except ValueError:
        return timezone.localdate().replace(day=1)
    return month if dt.date(2000, 1, 1) <= month <= dt.date(2100, 1, 1) else timezone.localdate().replace(day=1)


ACCESS_LOG_PAGE = 500


@login_required
@require_GET
def privacy_access_log(request):
    if not privacy.may_review_access_log(request.user):
        return _forbidden(request)
    month = _month(request.GET.get("month", ""))
    action = request.GET.get("action", "")[:60]
    events = privacy_selectors.access_log(month=month, action=action)
    previous = (month - dt.timedelta(days=1)).replace(day=1)
    following = (month + dt.timedelta(days=32)).replace(day=1)
    return render(request, "web/privacy/access_log.html", {
        "month": month, "action": action, "events": events[:ACCESS_LOG_PAGE], "total": events.count(),
        "previous": previous, "following": following, "form": ReasonForm(), "page_size": ACCESS_LOG_PAGE,
        "reviews": _reviews(month),
    })


def _reviews(month: dt.date):
    return privacy_selectors.access_log_reviews(month=month)


@login_required
@require_POST
def privacy_access_log_review(request):
    """An admin marks a month's access log as reviewed (the monthly review is itself kept in the log)."""
    if not privacy.may_review_access_log(request.user):
        return _forbidden(request)
    month = _month(request.POST.get("month", ""))
    privacy.mark_access_log_reviewed(actor=_actor(request), month=month, note=request.POST.get("note", ""))
    messages.success(request, _("Marked as reviewed."))
    return redirect(f"{reverse('web:privacy_access_log')}?month={month:%Y-%m}")


@login_required
@require_POST
def privacy_access_log_csv(request):
    """The month's access log as CSV for an audit; the download itself is logged with its reason."""
    if not privacy.may_review_access_log(request.user):
        return _forbidden(request)
    month = _month(request.POST.get("month", ""))
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why you need this download."))
        return redirect(f"{reverse('web:privacy_access_log')}?month={month:%Y-%m}")
    privacy.record_access(actor=_actor(request), obj=request.user, action="privacy.access_log_export",
                          reason=form.cleaned_data["reason"], reason_detail=form.cleaned_data["reason_detail"],
                          fields=[f"month.{month:%Y-%m}"])
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="access-log-{month:%Y-%m}.csv"'
    response.write("\ufeff")  # Korean Excel reads UTF-8 only with a BOM
    writer = csv.writer(response)
    writer.writerow(["at (Asia/Seoul)", "account", "ip", "via", "action", "object", "object id", "fields", "reason", "explanation"])
    for event in privacy_selectors.access_log(month=month).iterator(chunk_size=2000):
        reason = getattr(event, "access_reason", None)
        writer.writerow([timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M:%S"), event.actor_label, event.ip or "",
                         event.via, event.action, event.object_type, event.object_id, " ".join(event.fields or []),
                         reason.code if reason else "", reason.detail if reason else ""])
    return response
