"""Messaging in the staff app: the composer (one customer, or a test to oneself) with a live byte counter, the
"Messages" panel of the 360° page, the outbox log for managers (filters and counts), the suppression list, sender
profiles, the direct-mail print file and the telemarketing call list; and the public one-click opt-out page.

Everything sends through ``messaging.services`` (compliance, labels, outbox); text a channel cannot carry is refused
while it is written (``messaging.text``), not at send time."""
from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dangol.core.audit import Actor, client_ip
from dangol.core.masking import mask_email, mask_name
from dangol.core.phones import mask_phone
from dangol.core.selectors import units_for
from dangol.customers import selectors as customer_selectors
from dangol.customers.models import Stage
from dangol.messaging import calllist, printing, text
from dangol.messaging import images as mms_images
from dangol.messaging import selectors as messaging_selectors
from dangol.messaging import services as messaging
from dangol.messaging.models import Channel, Decision, Kind, Message, SenderProfile, Status, Suppression
from dangol.messaging.senders import sender_for

from .panels import Panel, customer_panel, nav_link
from .views import _customer_or_404

PAGE_SIZE = 50
PANEL_MESSAGES = 10
COMPOSE_CHANNELS = [(Channel.SMS, gettext_lazy("SMS / LMS")), (Channel.EMAIL, gettext_lazy("Email")),
                    (Channel.POST, gettext_lazy("Letter (printed)"))]
TEST_CHANNELS = [(Channel.SMS, gettext_lazy("SMS / LMS")), (Channel.EMAIL, gettext_lazy("Email"))]
REASON_LABELS = {
    "no_consent": gettext_lazy("no consent"), "refused": gettext_lazy("refused or withdrawn"),
    "suppressed": gettext_lazy("on the suppression list"), "capped": gettext_lazy("frequency cap"),
    "processing_suspended": gettext_lazy("processing suspended"), "erased": gettext_lazy("erased"),
    "merged": gettext_lazy("merged record"), "no_address": gettext_lazy("no address for the channel"),
    "alimtalk_ad": gettext_lazy("AlimTalk cannot carry ads"), "night": gettext_lazy("night (held until 08:00)"),
    "info": gettext_lazy("information"), "consent": gettext_lazy("consent"),
    "transaction_exception": gettext_lazy("transaction exception"), "staff_test": gettext_lazy("staff test"),
}


def is_manager(user) -> bool:
    return bool(user.is_authenticated and (user.sees_all_units or user.role == "manager"))


nav_link("web:messaging_outbox", gettext_lazy("Messages"), who=is_manager, testid="nav-messages")
# Staff prepare calls too (with masked numbers); managers reach the call list from the Messages tabs.
nav_link("web:messaging_call_list", gettext_lazy("Call list"), who=lambda user: user.is_authenticated and not is_manager(user),
         testid="nav-call-list")


def manager_only(request):
    return render(request, "web/messaging/forbidden.html", status=403)


def _masked_address(message: Message) -> str:
    value = message.to_address
    if not value:
        return ""
    if message.channel == Channel.EMAIL:
        return mask_email(value)
    if message.channel in (Channel.SMS, Channel.KAKAO, Channel.PHONE):
        return mask_phone(value)
    return value.split(" ")[0] + " ***" if " " in value else "***"  # a postal address: the postal code only


def _reason_label(reason: str) -> str:
    return str(REASON_LABELS.get(reason, reason))


def _rows(page):
    return [{"m": m, "to": _masked_address(m), "reason_label": _reason_label(m.reason)} for m in page]


# --- the composer ----------------------------------------------------------------------------------------------------

def sms_shape(body: str) -> dict:
    """What the live counter shows: type, bytes, limit, or the problem (emoji, too long)."""
    if body is None:
        body = ""
    bad = text.unencodable_characters(body)
    if bad:
        return {"ok": False, "subtype": "", "bytes": None, "limit": text.SMS_MAX_BYTES,
                "error": _("These characters cannot be sent by SMS (EUC-KR): %(chars)s") % {"chars": " ".join(bad)}}
    size = text.byte_length(body)
    if size <= text.SMS_MAX_BYTES:
        return {"ok": True, "subtype": "SMS", "bytes": size, "limit": text.SMS_MAX_BYTES, "error": ""}
    if size <= text.LMS_MAX_BYTES:
        return {"ok": True, "subtype": "LMS", "bytes": size, "limit": text.LMS_MAX_BYTES, "error": ""}
    return {"ok": False, "subtype": "LMS", "bytes": size, "limit": text.LMS_MAX_BYTES,
            "error": _("A text message holds at most 2,000 bytes (this one has %(n)d).") % {"n": size}}


class ComposeForm(forms.Form):
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), choices=COMPOSE_CHANNELS, initial=Channel.SMS)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), initial=Kind.INFO, widget=forms.RadioSelect,
                             choices=[(Kind.INFO, gettext_lazy("Information (order, booking, points…)")),
                                      (Kind.AD, gettext_lazy("Advertising (needs consent; labelled “(광고)”)"))])
    to_address = forms.CharField(label=gettext_lazy("Your own phone number or email (test)"), max_length=254, required=False,
                                 widget=forms.TextInput(attrs={"autocomplete": "off"}))
    subject = forms.CharField(label=gettext_lazy("Subject (LMS, email, letter)"), max_length=200, required=False)
    body = forms.CharField(label=gettext_lazy("Message"), max_length=5000,
                           widget=forms.Textarea(attrs={"rows": 6, "data-testid": "compose-body"}))
    image = forms.FileField(label=gettext_lazy("Picture (MMS)"), required=False,
                            help_text=gettext_lazy("A JPEG of at most 300 KB and 1500 × 1440 pixels; the text message goes as MMS."),
                            widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg", "data-testid": "compose-image"}))
    request_id = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, test: bool, may_advertise: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.test = test
        if test:
            self.fields["channel"].choices = TEST_CHANNELS
            self.fields["to_address"].required = True
        else:
            del self.fields["to_address"]
        if not may_advertise:
            self.fields["kind"].choices = [c for c in self.fields["kind"].choices if c[0] == Kind.INFO]
        if not self.is_bound:
            self.fields["request_id"].initial = uuid.uuid4().hex

    def clean_request_id(self):
        value = self.cleaned_data["request_id"]
        if not value.isalnum():
            raise ValidationError(_("The form is out of date; reload the page."))
        return value

    def clean(self):
        data = super().clean()
        channel, body, subject = data.get("channel"), data.get("body") or "", data.get("subject") or ""
        if channel == Channel.SMS and body:
            # Refused while writing: an emoji or text past 2,000 bytes never reaches the outbox.
            shape = sms_shape(body)
            if not shape["ok"]:
                self.add_error("body", shape["error"])
            elif subject:
                try:
                    text.check_sms_text(subject, field="subject")
                except ValidationError as exc:
                    self.add_error("subject", exc.message_dict["subject"])
                else:
                    if text.byte_length(subject) > text.LMS_SUBJECT_MAX_BYTES:
                        self.add_error("subject", _("An LMS subject has at most 40 bytes."))
        if channel == Channel.EMAIL and not subject.strip():
            self.add_error("subject", _("An email needs a subject."))
        if data.get("image") and channel != Channel.SMS:
            self.add_error("image", _("Only a text message (MMS) carries a picture."))
        return data


def _service_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
    else:
        for error in exc.messages:
            form.add_error(None, error)


@login_required
@require_http_methods(["GET", "POST"])
def compose(request):
    """``?customer=ID``: a message to that customer (through compliance); ``?test=1``: a test to oneself."""
    test = request.GET.get("test") == "1" or request.POST.get("mode") == "test"
    customer = None
    if not test:
        raw = request.GET.get("customer") or request.POST.get("customer") or ""
        if not raw.isdigit() or len(raw) > 18:
            return render(request, "web/messaging/compose_pick.html", status=400 if request.method == "POST" else 200)
        customer = _customer_or_404(request, int(raw))
    may_advertise = is_manager(request.user)
    form = ComposeForm(request.POST or None, request.FILES or None, test=test, may_advertise=may_advertise)
    result = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        actor = Actor.from_request(request)
        unit = customer_selectors.acting_unit(user=request.user, customer=customer) if customer else _first_unit(request)
        try:
            image = None
            if data.get("image"):
                image = mms_images.add_upload(actor=actor, upload=data["image"], unit=unit)
            if test:
                result = messaging.send_test(actor=actor, channel=data["channel"], to_address=data["to_address"],
                                             body=data["body"], subject=data["subject"], kind=data["kind"], unit=unit,
                                             image=image)
            else:
                result = messaging.send(customer=customer, channel=data["channel"], kind=data["kind"],
                                        source=f"staff:{request.user.pk}", occurrence=data["request_id"],
                                        body=data["body"], subject=data["subject"], unit=unit, actor=actor, image=image)
        except ValidationError as exc:
            _service_errors(form, exc)
        else:
            text_ = _status_sentence(result)
            if result.status == Status.BLOCKED:
                messages.warning(request, text_)
            else:
                messages.success(request, text_)
            if customer is not None:
                return redirect("web:customer_detail", customer_id=customer.pk)
            return redirect(f"{request.path}?test=1")
    body = form["body"].value() or ""
    return render(request, "web/messaging/compose.html", {
        "form": form, "customer": customer, "test": test, "shape": sms_shape(body),
        "channel": form["channel"].value() or Channel.SMS,
        "sender": sender_for(customer_selectors.acting_unit(user=request.user, customer=customer) if customer else None),
    }, status=400 if request.method == "POST" else 200)


def _first_unit(request):
    return units_for(request.user).first()


def _status_sentence(message: Message) -> str:
    if message.status == Status.BLOCKED:
        return _("Not sent: %(reason)s.") % {"reason": _reason_label(message.reason)}
    if message.status == Status.HELD:
        return _("Held until 08:00 (night-time rule); it goes out then.")
    return _("Message queued (%(type)s).") % {"type": message.get_subtype_display()}


@login_required
@require_http_methods(["GET", "POST"])
def byte_count(request):
    """htmx, while typing: the type (SMS/LMS) and byte count of the body, or why it cannot be sent."""
    data = request.POST if request.method == "POST" else request.GET
    body = data.get("body", "")[:6000]
    channel = data.get("channel", Channel.SMS)
    return render(request, "web/messaging/_byte_count.html", {"shape": sms_shape(body), "channel": channel})


# --- the 360° panel --------------------------------------------------------------------------------------------------

def _panel_context(request, customer) -> dict:
    recent = list(messaging_selectors.messages_of_customer(customer)[:PANEL_MESSAGES])
    return {"customer": customer, "rows": _rows(recent), "total": Message.objects.filter(customer=customer).count()
            if len(recent) == PANEL_MESSAGES else len(recent), "is_manager": is_manager(request.user)}


@customer_panel(order=40)
def messages_panel(request, customer):
    return Panel("web/messaging/_customer_panel.html", _panel_context(request, customer))


@login_required
@require_GET
def customer_messages_panel(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    return render(request, "web/messaging/_panel_body.html", {"panel": _panel_context(request, customer)})


# --- the outbox log --------------------------------------------------------------------------------------------------

@login_required
@require_GET
def outbox(request):
    if not is_manager(request.user):
        return manager_only(request)
    base = messaging_selectors.messages_for(request.user)
    status = request.GET.get("status", "")
    channel = request.GET.get("channel", "")
    reason = request.GET.get("reason", "")[:40]
    source = request.GET.get("source", "")[:100]
    qs = base
    if status in Status.values:
        qs = qs.filter(status=status)
    else:
        status = ""
    if channel in Channel.values:
        qs = qs.filter(channel=channel)
    else:
        channel = ""
    if reason:
        qs = qs.filter(reason=reason)
    if source:
        qs = qs.filter(source=source)
    filtered_counts = dict(qs.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    reasons = (base.exclude(reason="").order_by().values_list("reason").annotate(n=Count("id")).values_list("reason", "n"))
    page = Paginator(qs.select_related("unit").order_by("-created_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    filters = {"status": status, "channel": channel, "reason": reason, "source": source}
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    template = "web/messaging/_outbox_table.html" if request.htmx else "web/messaging/outbox.html"
    return render(request, template, {
        "page": page, "rows": _rows(page), "filters": filters, "query": query,
        "statuses": [(value, label, filtered_counts.get(value, 0)) for value, label in Status.choices],
        "total": sum(filtered_counts.values()),
        "channels": Channel.choices, "reasons": [(r, _reason_label(r), n) for r, n in reasons],
        "printable": channel == Channel.POST and bool(source),
    })


@login_required
@require_GET
def message_detail(request, message_id: int):
    """One message: what was sent (or not), to whom (masked), and every decision of the engine with its reason."""
    if not is_manager(request.user):
        return manager_only(request)
    message = messaging_selectors.messages_for(request.user).filter(pk=message_id).first()
    if message is None:
        raise Http404
    decisions = [{"d": d, "reason_label": _reason_label(d.reason)} for d in messaging_selectors.decisions_of(message)]
    return render(request, "web/messaging/message.html", {"row": _rows([message])[0], "decisions": decisions})


# --- suppression list --------------------------------------------------------------------------------------------------

class SuppressionForm(forms.Form):
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), required=False,
                                choices=[("", gettext_lazy("Every channel"))] + [(c, l) for c, l in Channel.choices])
    address = forms.CharField(label=gettext_lazy("Phone number or email"), max_length=254)
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200)

    def clean(self):
        from dangol.core.phones import try_normalize_phone

        data = super().clean()
        raw, channel = (data.get("address") or "").strip(), data.get("channel") or ""
        if not raw:
            return data
        if "@" in raw:
            try:
                forms.EmailField().clean(raw)
            except ValidationError:
                self.add_error("address", _("Enter a valid phone number or email address."))
                return data
            if channel not in ("", Channel.EMAIL):
                self.add_error("channel", _("An email address is suppressed for email (or every channel)."))
            value = raw.lower()
        else:
            value = try_normalize_phone(raw)
            if not value:
                self.add_error("address", _("Enter a valid phone number or email address."))
                return data
            if channel in (Channel.EMAIL, Channel.POST):
                self.add_error("channel", _("A phone number is suppressed for SMS, KakaoTalk and calls (or every channel)."))
        if Suppression.objects.filter(channel=channel, address=value).exists():
            self.add_error("address", _("This address is already on the suppression list for that channel."))
        return data


@login_required
@require_http_methods(["GET", "POST"])
def suppressions(request):
    if not is_manager(request.user):
        return manager_only(request)
    form = SuppressionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            messaging.add_suppression(actor=Actor.from_request(request), channel=form.cleaned_data["channel"],
                               address=form.cleaned_data["address"], reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            _service_errors(form, exc)
        else:
            messages.success(request, _("Added to the suppression list."))
            return redirect("web:messaging_suppressions")
    entries = Suppression.objects.select_related("created_by", "customer").order_by("-created_at", "-id")
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"s": s, "address": mask_email(s.address) if "@" in s.address else (mask_phone(s.address) if s.address else ""),
             "customer": mask_name(s.customer.name) if s.customer_id and s.customer else ""} for s in page]
    return render(request, "web/messaging/suppressions.html", {"form": form, "page": page, "rows": rows},
                  status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def suppression_remove(request, suppression_id: int):
    if not is_manager(request.user):
        return manager_only(request)
    entry = Suppression.objects.filter(pk=suppression_id).first()
    if entry is None:
        raise Http404
    messaging.remove_suppression(actor=Actor.from_request(request), suppression=entry)
    messages.success(request, _("Removed from the suppression list."))
    return redirect("web:messaging_suppressions")


# --- sender profiles ---------------------------------------------------------------------------------------------------

class SenderProfileForm(forms.Form):
    unit = forms.ChoiceField(label=gettext_lazy("For"))
    name = forms.CharField(label=gettext_lazy("Sender name"), max_length=60)
    contact = forms.CharField(label=gettext_lazy("Contact number"), max_length=20)
    optout_number = forms.CharField(label=gettext_lazy("080 opt-out number"), max_length=20,
                                    help_text=gettext_lazy("The free number that ends every SMS ad (무료수신거부 080-…)."))
    sms_from = forms.CharField(label=gettext_lazy("Registered SMS sender number"), max_length=20, required=False)
    email_from = forms.EmailField(label=gettext_lazy("Email sender"), required=False)

    def __init__(self, *args, units, group: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.units = {str(u.pk): u for u in units}
        choices = [(str(u.pk), u.name) for u in units]
        if group:
            choices.insert(0, ("group", _("The whole group (default)")))
        self.fields["unit"].choices = choices

    def clean_optout_number(self):
        value = self.cleaned_data["optout_number"].strip()
        if not value.replace("-", "").startswith("080") or not value.replace("-", "").isdigit():
            raise ValidationError(_("The opt-out number is a free 080 number, e.g. 080-123-4567."))
        return value

    def clean_contact(self):
        value = self.cleaned_data["contact"].strip()
        if not value.replace("-", "").replace(" ", "").isdigit():
            raise ValidationError(_("Enter a phone number (digits and hyphens)."))
        return value

    def clean_sms_from(self):
        value = self.cleaned_data["sms_from"].replace("-", "").strip()
        if value and not value.isdigit():
            raise ValidationError(_("The SMS sender number has digits only (as registered with the carrier)."))
        return value


@login_required
@require_http_methods(["GET", "POST"])
def sender_profiles(request):
    """Who the ads of each of the manager's units say they come from (name, contact, 080 opt-out number, sender
    numbers); managers change their own units', admins also the group's default."""
    if not is_manager(request.user):
        return manager_only(request)
    units = list(units_for(request.user))
    group = request.user.sees_all_units
    profiles = {p.unit_id: p for p in SenderProfile.objects.filter(Q(unit__in=units) | Q(unit__isnull=True))}
    chosen = request.POST.get("unit") or request.GET.get("unit") or (str(units[0].pk) if units else "group")
    initial_profile = profiles.get(None if chosen == "group" else int(chosen) if chosen.isdigit() else -1)
    initial = {"unit": chosen}
    if initial_profile:
        initial.update({k: getattr(initial_profile, k) for k in ("name", "contact", "optout_number", "sms_from", "email_from")})
    form = SenderProfileForm(request.POST or None, units=units, group=group, initial=initial)
    if request.method == "POST" and form.is_valid():
        key = form.cleaned_data["unit"]
        unit = None if key == "group" else form.units[key]
        fields = {k: form.cleaned_data[k] for k in ("name", "contact", "optout_number", "sms_from", "email_from")}
        try:
            messaging.set_sender_profile(actor=Actor.from_request(request), unit=unit, **fields)
        except ValidationError as exc:
            _service_errors(form, exc)
        else:
            messages.success(request, _("Sender profile saved."))
            return redirect("web:messaging_senders")
    rows = [{"unit": unit, "profile": profiles.get(unit.pk), "effective": sender_for(unit)} for unit in units]
    return render(request, "web/messaging/senders.html", {"rows": rows, "group": profiles.get(None), "form": form,
                                                          "group_sender": sender_for(None) if group else None},
                  status=400 if request.method == "POST" else 200)


class FrequencyCapForm(forms.Form):
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), choices=Channel.choices)
    max_messages = forms.IntegerField(label=gettext_lazy("At most (ads)"), min_value=1, max_value=1000, required=False,
                                      help_text=gettext_lazy("Empty: no cap on this channel."))
    period_days = forms.IntegerField(label=gettext_lazy("Within (days)"), min_value=1, max_value=365, initial=7)


@login_required
@require_http_methods(["GET", "POST"])
def frequency_caps(request):
    """How many ads a customer gets per channel within a period (group-wide): managers see them, admins change them."""
    from dangol.messaging.models import FrequencyCap

    if not is_manager(request.user):
        return manager_only(request)
    form = FrequencyCapForm(request.POST or None)
    if request.method == "POST":
        if not request.user.sees_all_units:
            return manager_only(request)
        if form.is_valid():
            try:
                messaging.set_frequency_cap(actor=Actor.from_request(request), channel=form.cleaned_data["channel"],
                                            max_messages=form.cleaned_data["max_messages"],
                                            period_days=form.cleaned_data["period_days"] or 7)
            except ValidationError as exc:
                _service_errors(form, exc)
            else:
                messages.success(request, _("Frequency cap saved."))
                return redirect("web:messaging_caps")
    caps = {cap.channel: cap for cap in FrequencyCap.objects.all()}
    rows = [{"channel": value, "label": label, "cap": caps.get(value)} for value, label in Channel.choices]
    return render(request, "web/messaging/caps.html", {"rows": rows, "form": form, "may_change": request.user.sees_all_units},
                  status=400 if request.method == "POST" else 200)


# --- direct mail and call list -----------------------------------------------------------------------------------------

@login_required
@require_POST
def print_batch(request):
    """The print file (letters + labels) of a batch of post messages (one source), queued ones only — the compliance
    engine has already blocked the customers who may not get it; printed messages are marked sent."""
    if not is_manager(request.user):
        return manager_only(request)
    source = request.POST.get("source", "")[:100]
    what = request.POST.get("what", "both")
    if not source:
        messages.error(request, _("Choose the batch (source) to print."))
        return redirect("web:messaging_outbox")
    batch = messaging_selectors.messages_for(request.user).filter(channel=Channel.POST, source=source)
    try:
        pdf, ids = printing.print_batch(messages=batch, user=request.user, with_letters=what in ("both", "letters"),
                                        with_labels=what in ("both", "labels"))
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
        return redirect(f"{_outbox_url()}?channel=post&source={source}")
    messaging.mark_handed_over(message_ids=ids, actor=Actor.from_request(request))
    from dangol.core import audit

    if ids:
        audit.record(actor=Actor.from_request(request), action="messaging.print", obj=Message.objects.get(pk=ids[0]),
                     fields=["address", "name", f"letters:{len(ids)}", f"source:{source}"])
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="direct-mail-{timezone.localdate():%Y%m%d}.pdf"'
    response["Cache-Control"] = "no-store, private"
    return response


def _outbox_url():
    from django.urls import reverse

    return reverse("web:messaging_outbox")


class CallListForm(forms.Form):
    unit = forms.TypedChoiceField(label=gettext_lazy("Business unit"), coerce=int)
    stage = forms.ChoiceField(label=gettext_lazy("Relationship stage"), required=False,
                              choices=[("", gettext_lazy("Any"))] + list(Stage.choices))
    file_format = forms.ChoiceField(label=gettext_lazy("File"), choices=[("xlsx", "Excel (XLSX)"), ("csv", "CSV")],
                                    initial="xlsx")
    reason = forms.CharField(label=gettext_lazy("Why do you need this list?"), max_length=200,
                             help_text=gettext_lazy("Written to the audit trail with the download."))

    def __init__(self, *args, units, **kwargs):
        super().__init__(*args, **kwargs)
        self.units = {u.pk: u for u in units}
        self.fields["unit"].choices = [(u.pk, u.name) for u in units]


@login_required
@require_http_methods(["GET", "POST"])
def call_list(request):
    """Telemarketing: the customers of a unit who may be called with an offer (phone consent), as XLSX or CSV; full
    numbers for managers and admins, masked for staff; every download audited with its reason."""
    units = list(units_for(request.user))
    form = CallListForm(request.POST or None, units=units)
    if request.method == "POST" and form.is_valid():
        unit = form.units[form.cleaned_data["unit"]]
        try:
            data, count = calllist.export_call_list(actor=Actor.from_request(request), user=request.user, unit=unit,
                                                    reason=form.cleaned_data["reason"], stage=form.cleaned_data["stage"],
                                                    file_format=form.cleaned_data["file_format"])
        except (ValidationError, PermissionDenied) as exc:
            if isinstance(exc, PermissionDenied):
                form.add_error(None, str(exc))
            else:
                _service_errors(form, exc)
        else:
            fmt = form.cleaned_data["file_format"]
            content_type = "text/csv; charset=utf-8" if fmt == "csv" else \
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            response = HttpResponse(data, content_type=content_type)
            response["Content-Disposition"] = f'attachment; filename="call-list-{unit.code}-{timezone.localdate():%Y%m%d}.{fmt}"'
            response["Cache-Control"] = "no-store, private"
            response["X-Row-Count"] = str(count)
            return response
    return render(request, "web/messaging/call_list.html", {"form": form, "full": request.user.may_see_full_contacts,
                                                            "has_units": bool(units)},
                  status=400 if request.method == "POST" else 200)


# --- the public opt-out page ---------------------------------------------------------------------------------------------

# No CSRF token: the signed token in the URL is the capability (whoever can forge the POST holds the link anyway),
# and the opt-out must work in a browser that refuses cookies or sends "Origin: null" under no-referrer.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def opt_out(request, token: str):
    """No login: GET shows what the link unsubscribes from and one button; POST unsubscribes at once (a withdrawal of
    the ad consent, which blocks every queued ad of the channel) and says so in Korean and English. A bad link
    answers 404 with an explanation."""
    from django.core import signing

    from dangol.messaging.senders import read_unsubscribe_token

    try:
        customer_id, channel = read_unsubscribe_token(token[:500])
    except signing.BadSignature:
        response = render(request, "web/messaging/opt_out.html", {"invalid": True}, status=404)
        return _private(response)
    channel_label = dict(Channel.choices).get(channel, channel)
    context = {"token": token, "channel": channel, "channel_label": channel_label, "done": False}
    if request.method == "POST":
        try:
            result = messaging.unsubscribe(token, ip=client_ip(request))
        except ValidationError:
            response = render(request, "web/messaging/opt_out.html", {"invalid": True}, status=404)
            return _private(response)
        context.update(done=True, already=result["already"], at=timezone.now())
    return _private(render(request, "web/messaging/opt_out.html", context))


def _private(response):
    response["Cache-Control"] = "no-store, private"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
