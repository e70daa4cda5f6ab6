"""Partner data sharing in the staff app: the agreements and the transfer log (managers and admins), the export page
(agreed fields only, to the consenting customers, an encrypted zip whose password and link are shown once), the
import of a partner's list, the public expiring download, and the consents panel of the 360° page (anyone who sees
the customer records a consent at the counter)."""
from __future__ import annotations

from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dangol.core.audit import Actor, client_ip
from dangol.customers import selectors as customer_selectors
from dangol.partners import services as partners
from dangol.partners.fields import FIELDS
from dangol.partners.models import Agreement, ConsentMethod, Direction, Transfer

from .panels import Panel, customer_panel, nav_link
from .views import _customer_or_404

MAX_UPLOAD_BYTES = 50 * 1024 * 1024

nav_link("web:partners_home", gettext_lazy("Partners"), who=partners.may_share, testid="nav-partners")


def sharer_required(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not partners.may_share(request.user):
            return render(request, "web/partials/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _agreement_or_404(request, agreement_id: int) -> Agreement:
    return get_object_or_404(partners.agreements_for(request.user), pk=agreement_id)


class ExportForm(forms.Form):
    fields = forms.MultipleChoiceField(label=gettext_lazy("Fields"), widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, agreement: Agreement, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["fields"].choices = [(key, FIELDS[key][0]) for key in FIELDS if key in agreement.fields]
        self.fields["fields"].initial = [key for key in FIELDS if key in agreement.fields]


class ImportForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("The partner's file (CSV or XLSX)"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError(_("The file is larger than 50 MB."))
        return upload


class ConsentForm(forms.Form):
    granted = forms.TypedChoiceField(label=gettext_lazy("Answer"), coerce=lambda v: v == "yes",
                                     choices=[("yes", gettext_lazy("Agrees")), ("no", gettext_lazy("Refuses or withdraws"))],
                                     widget=forms.RadioSelect)
    method = forms.ChoiceField(label=gettext_lazy("How"), choices=[(k, v) for k, v in ConsentMethod.choices
                                                                   if k != ConsentMethod.PARTNER_FILE])
    evidence = forms.CharField(label=gettext_lazy("Evidence (form number, call id…)"), max_length=300, required=False)


@sharer_required
@require_GET
def partners_home(request):
    agreements = list(partners.agreements_for(request.user).order_by("partner__name", "title"))
    rows = [{"agreement": a, "consenting": partners.consenting_customers(a, request.user).count()
             if a.direction == Direction.TO_PARTNER else None} for a in agreements]
    transfers = Transfer.objects.filter(agreement__in=agreements).select_related("partner", "by", "agreement")[:50]
    return render(request, "web/partners/home.html", {"rows": rows, "transfers": transfers})


@sharer_required
@require_http_methods(["GET", "POST"])
def partner_export(request, agreement_id: int):
    agreement = _agreement_or_404(request, agreement_id)
    if agreement.direction != Direction.TO_PARTNER:
        raise Http404
    form = ExportForm(request.POST or None, agreement=agreement)
    if request.method == "POST" and form.is_valid():
        try:
            outcome = partners.export_to_partner(actor=Actor.from_request(request), agreement=agreement,
                                                 fields=form.cleaned_data["fields"])
        except (ValidationError, PermissionDenied) as exc:
            for message in (exc.messages if isinstance(exc, ValidationError) else [str(exc)]):
                form.add_error(None, message)
        else:
            link = request.build_absolute_uri(reverse("web:partners_download", args=[outcome.token]))
            response = render(request, "web/partners/export_done.html", {
                "agreement": agreement, "transfer": outcome.transfer, "password": outcome.password, "link": link,
                "field_labels": [FIELDS[f][0] for f in outcome.transfer.fields]})
            response["Cache-Control"] = "no-store"  # the password and the link are shown once
            return response
    return render(request, "web/partners/export.html", {
        "agreement": agreement, "form": form, "consenting": partners.consenting_customers(agreement, request.user).count(),
        "hours": partners.export_hours()}, status=400 if form.errors else 200)


@sharer_required
@require_http_methods(["GET", "POST"])
def partner_import(request, agreement_id: int):
    agreement = _agreement_or_404(request, agreement_id)
    if agreement.direction != Direction.FROM_PARTNER:
        raise Http404
    form = ImportForm(request.POST or None, request.FILES or None)
    outcome = None
    if request.method == "POST" and form.is_valid():
        from dangol.ingest.services import discard_upload, keep_upload

        path = keep_upload(form.cleaned_data["file"])
        try:
            outcome = partners.import_from_partner(actor=Actor.from_request(request), agreement=agreement, path=path,
                                                   original_name=form.cleaned_data["file"].name)
        except (ValidationError, PermissionDenied) as exc:
            for message in (exc.messages if isinstance(exc, ValidationError) else [str(exc)]):
                form.add_error(None, message)
        finally:
            discard_upload(path)  # the partner's file holds personal data: kept only while it is read
    return render(request, "web/partners/import.html", {"agreement": agreement, "form": form, "outcome": outcome},
                  status=400 if form.errors else 200)


@never_cache
@require_GET
def partner_download(request, token: str):
    """The partner's download link: no login (the partner has none), a random secret in the link, expiring; the
    file is encrypted with a password sent apart. Unknown or expired: 404."""
    transfer = partners.download(token, actor=Actor(user=request.user if request.user.is_authenticated else None,
                                                    ip=client_ip(request), via="download"))
    if transfer is None:
        raise Http404
    response = FileResponse(open(transfer.path, "rb"), as_attachment=True, filename=transfer.file_name,
                            content_type="application/zip")
    response["Cache-Control"] = "no-store, private"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


# --- the 360° panel -----------------------------------------------------------------------------------------------------

@customer_panel(order=40)
def consents_panel(request, customer):
    consents = partners.customer_consents(customer, request.user)
    origins = partners.customer_origins(customer)
    if not consents and not origins:
        return None
    return Panel("web/partners/_customer_panel.html", {"customer": customer, "consents": consents, "origins": origins,
                                                       "form": ConsentForm(initial={"method": ConsentMethod.COUNTER})})


@login_required
@require_POST
def partner_consent(request, customer_id: int, agreement_id: int):
    customer = _customer_or_404(request, customer_id)
    agreement = next((row["agreement"] for row in partners.customer_consents(customer, request.user)
                      if row["agreement"].pk == agreement_id), None)
    if agreement is None:
        raise Http404
    form = ConsentForm(request.POST)
    if form.is_valid():
        try:
            partners.record_consent(actor=Actor.from_request(request), customer=customer, agreement=agreement,
                                    granted=form.cleaned_data["granted"], method=form.cleaned_data["method"],
                                    evidence=form.cleaned_data["evidence"],
                                    unit=customer_selectors.acting_unit(user=request.user, customer=customer))
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("Consent recorded: %(partner)s.") % {"partner": agreement.partner.name})
    else:
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
    return redirect("web:customer_detail", customer_id=customer.pk)
