"""Service in the staff app: the "know this customer" and cases panel of the 360° page (log a case in three taps:
type, topic, save), the case page (workflow, notes and replies, assignment, escalation, goodwill), the "my cases"
queue with the overdue list, the service KPIs and survey results for managers, and two public pages without login:
the inquiry / A/S request form and the survey answer page behind a signed link.

Views parse input, check scope, call ``dangol.service.services`` or ``selectors``, render; every POST redirects."""
from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dangol.core.audit import Actor, client_ip
from dangol.core.masking import mask_name
from dangol.core.phones import normalize_phone
from dangol.core.models import BusinessUnit
from dangol.core.selectors import units_for
from dangol.customers import selectors as customer_selectors
from dangol.loyalty.models import CouponTemplate
from dangol.sales import selectors as sales_selectors
from dangol.service import public
from dangol.service import selectors as service_selectors
from dangol.service import services as service
from dangol.service.models import (
    Case,
    CaseChannel,
    CaseStatus,
    CaseType,
    EntryKind,
    Priority,
    ScoreKind,
    SurveyInvitation,
    Trait,
    TraitCategory,
    TraitSource,
)

from .panels import Panel, customer_panel, nav_link
from .views import _customer_or_404


def is_manager(user) -> bool:
    return user.sees_all_units or user.role == "manager"


nav_link("web:service_cases", gettext_lazy("Cases"), testid="nav-cases")
nav_link("web:service_kpis", gettext_lazy("Service"), who=is_manager, testid="nav-service-kpis")

# Common reasons per type: one tap instead of typing at a busy counter.
TOPICS = {
    CaseType.COMPLAINT: [gettext_lazy("Product quality"), gettext_lazy("Staff attitude"), gettext_lazy("Waiting time"),
                         gettext_lazy("Billing"), gettext_lazy("Cleanliness")],
    CaseType.AFTER_SALES: [gettext_lazy("Repair"), gettext_lazy("Exchange"), gettext_lazy("Adjustment"), gettext_lazy("Warranty")],
    CaseType.INQUIRY: [gettext_lazy("Product"), gettext_lazy("Reservation"), gettext_lazy("Opening hours"), gettext_lazy("Points and coupons")],
    CaseType.REQUEST: [gettext_lazy("Special request"), gettext_lazy("Callback"), gettext_lazy("Document or receipt")],
}
QUEUE_PAGE = 50
RECENT_ORDERS = 10


# --- forms -----------------------------------------------------------------------------------------------------------------

class CaseForm(forms.Form):
    case_type = forms.ChoiceField(label=gettext_lazy("Type"), choices=CaseType.choices, widget=forms.RadioSelect)
    topic = forms.CharField(required=False, widget=forms.RadioSelect)
    subject = forms.CharField(label=gettext_lazy("Or in your words"), required=False, max_length=200)
    description = forms.CharField(label=gettext_lazy("Details"), required=False, max_length=5000,
                                  widget=forms.Textarea(attrs={"rows": 3}))
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), choices=CaseChannel.choices, initial=CaseChannel.COUNTER)
    priority = forms.ChoiceField(label=gettext_lazy("Priority"), choices=Priority.choices, initial=Priority.NORMAL)
    unit = forms.TypedChoiceField(label=gettext_lazy("Business unit"), coerce=int)
    order = forms.TypedChoiceField(label=gettext_lazy("About the order (optional)"), coerce=int, required=False, empty_value=None)

    def __init__(self, *args, units, orders=(), case_type=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.units = {u.pk: u for u in units}
        self.orders = {o.pk: o for o in orders}
        self.fields["order"].choices = [("", "—")] + [
            (o.pk, f"{timezone.localtime(o.ordered_at):%Y-%m-%d} · {o.unit.name} · {o.total:,}") for o in orders]
        if not orders:
            self.fields["order"].widget = forms.HiddenInput()
        self.fields["unit"].choices = [(u.pk, u.name) for u in units]
        if len(units) == 1:
            self.fields["unit"].widget = forms.HiddenInput()
        kind = self.data.get("case_type") if self.is_bound else case_type
        kind = kind if kind in CaseType.values else CaseType.COMPLAINT
        self.fields["topic"].widget.choices = [(str(t), str(t)) for t in TOPICS[CaseType(kind)]]
        self.topics = TOPICS[CaseType(kind)]

    def clean_unit(self):
        unit = self.units.get(self.cleaned_data["unit"])
        if unit is None:
            raise ValidationError(_("Choose one of your business units."))
        return unit

    def clean_order(self):
        order_id = self.cleaned_data.get("order")
        if order_id is None:
            return None
        if order_id not in self.orders:
            raise ValidationError(_("Choose one of the customer's recent orders."))
        return self.orders[order_id]


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=CaseStatus.choices)
    note = forms.CharField(required=False, max_length=5000)
    resolution = forms.CharField(required=False, max_length=5000)


class EntryForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=[(EntryKind.NOTE, EntryKind.NOTE.label),
                                                                  (EntryKind.REPLY, EntryKind.REPLY.label)],
                             initial=EntryKind.NOTE, widget=forms.RadioSelect)
    body = forms.CharField(label=gettext_lazy("Text"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


class GoodwillForm(forms.Form):
    kind = forms.ChoiceField(choices=[("coupon", gettext_lazy("Coupon")), ("points", gettext_lazy("Points"))], initial="coupon")
    template = forms.TypedChoiceField(label=gettext_lazy("Coupon"), coerce=int, required=False)
    points = forms.IntegerField(label=gettext_lazy("Points"), required=False, min_value=1,
                                widget=forms.NumberInput(attrs={"inputmode": "numeric"}))
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300)

    def __init__(self, *args, templates, **kwargs):
        super().__init__(*args, **kwargs)
        self.templates = {t.pk: t for t in templates}
        self.fields["template"].choices = [("", "—")] + [(t.pk, t.name) for t in templates]


class TraitForm(forms.Form):
    category = forms.ChoiceField(label=gettext_lazy("Kind"), choices=TraitCategory.choices)
    value = forms.CharField(label=gettext_lazy("What"), max_length=200,
                            widget=forms.TextInput(attrs={"placeholder": gettext_lazy("e.g. no nuts, high floor, 52 mm frame")}))
    source = forms.ChoiceField(label=gettext_lazy("Source"), choices=TraitSource.choices, initial=TraitSource.COUNTER)


class PublicRequestForm(forms.Form):
    case_type = forms.ChoiceField(label=gettext_lazy("What can we do for you?"), widget=forms.RadioSelect,
                                  choices=[(CaseType.INQUIRY, gettext_lazy("A question")),
                                           (CaseType.AFTER_SALES, gettext_lazy("A repair or after-sales request (A/S)"))],
                                  initial=CaseType.INQUIRY)
    unit = forms.TypedChoiceField(label=gettext_lazy("Where"), coerce=int)
    name = forms.CharField(label=gettext_lazy("Your name"), max_length=100)
    phone = forms.CharField(label=gettext_lazy("Mobile number"), max_length=30,
                            widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}))
    product_text = forms.CharField(label=gettext_lazy("Product (optional)"), required=False, max_length=120)
    message = forms.CharField(label=gettext_lazy("Your message"), max_length=2000, widget=forms.Textarea(attrs={"rows": 5}))
    # The honeypot: hidden from people (off-screen, not focusable), filled in by bots.
    website = forms.CharField(required=False, max_length=200,
                              widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}))
    token = forms.CharField(required=False, widget=forms.HiddenInput, max_length=200)

    def __init__(self, *args, units, **kwargs):
        super().__init__(*args, **kwargs)
        self.units = {u.pk: u for u in units}
        self.fields["unit"].choices = [(u.pk, u.name) for u in units]

    def clean_unit(self):
        unit = self.units.get(self.cleaned_data["unit"])
        if unit is None:
            raise ValidationError(_("Choose where you bought or stayed."))
        return unit

    def clean_phone(self):
        return normalize_phone(self.cleaned_data["phone"])  # its ValidationError says what is wrong with the number


def _add_errors(form, exc: ValidationError | PermissionDenied) -> None:
    if isinstance(exc, PermissionDenied):
        form.add_error(None, str(exc) or _("Your role may not do this."))
        return
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
    else:
        for error in exc.messages:
            form.add_error(None, error)


def _flash_errors(request, exc) -> None:
    if isinstance(exc, PermissionDenied):
        messages.error(request, str(exc) or _("Your role may not do this."))
    else:
        for message in exc.messages:
            messages.error(request, message)


# --- the 360° panel ----------------------------------------------------------------------------------------------------------

@customer_panel(order=5)
def service_panel(request, customer):
    return Panel("web/service/_customer_panel.html", {
        "customer": customer,
        "traits": service_selectors.traits_of(customer.pk),
        "cases": service_selectors.cases_of_customer(request.user, customer.pk),
        "trait_form": TraitForm(),
        "case_types": CaseType.choices,
        "now": timezone.now(),
    })


@login_required
@require_POST
def trait_add(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    form = TraitForm(request.POST)
    if form.is_valid():
        try:
            service.add_trait(actor=Actor.from_request(request), customer=customer, unit=customer_selectors.acting_unit(
                user=request.user, customer=customer), **form.cleaned_data)
        except (ValidationError, PermissionDenied) as exc:
            _flash_errors(request, exc)
        else:
            messages.success(request, _("Noted: the whole team sees it now."))
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    return redirect(f"{_customer_url(customer)}#service-panel")


@login_required
@require_POST
def trait_remove(request, customer_id: int, trait_id: int):
    customer = _customer_or_404(request, customer_id)
    trait = Trait.objects.filter(pk=trait_id, customer=customer).first()
    if trait is None:
        raise Http404
    service.remove_trait(actor=Actor.from_request(request), trait=trait)
    messages.success(request, _("Removed."))
    return redirect(f"{_customer_url(customer)}#service-panel")


def _customer_url(customer) -> str:
    from django.urls import reverse

    return reverse("web:customer_detail", kwargs={"customer_id": customer.pk})


# --- cases -------------------------------------------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def case_create(request, customer_id: int):
    """Tap one: the type on the 360° page; tap two: a topic; tap three: save."""
    customer = _customer_or_404(request, customer_id)
    units = list(units_for(request.user))
    if not units:
        return render(request, "web/service/forbidden.html", {"reason": _("Your account has no business unit yet. Ask an admin to assign one.")},
                      status=403)
    default_unit = customer_selectors.acting_unit(user=request.user, customer=customer) or units[0]
    case_type = request.GET.get("type", CaseType.COMPLAINT)
    initial = {"case_type": case_type if case_type in CaseType.values else CaseType.COMPLAINT, "unit": default_unit.pk,
               "channel": CaseChannel.COUNTER, "priority": Priority.NORMAL}
    orders = list(sales_selectors.orders_of_customer(user=request.user, customer_id=customer.pk)
                  .select_related("unit").order_by("-ordered_at", "-id")[:RECENT_ORDERS])
    form = CaseForm(request.POST or None, units=units, orders=orders, initial=initial, case_type=initial["case_type"])
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            case = service.open_case(actor=Actor.from_request(request), customer=customer, unit=data["unit"],
                                     case_type=data["case_type"], channel=data["channel"], priority=data["priority"],
                                     subject=data["subject"] or data["topic"], description=data["description"],
                                     order=data["order"])
        except (ValidationError, PermissionDenied) as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("%(case)s logged; due %(due)s.") % {
                "case": service.case_label(case), "due": timezone.localtime(case.due_at).strftime("%m-%d %H:%M")})
            return redirect("web:service_case", case_id=case.pk)
    return render(request, "web/service/case_form.html", {"form": form, "customer": customer,
                                                          "masked_name": mask_name(customer.name)})


def _case_or_404(request, case_id: int) -> Case:
    try:
        return service_selectors.case_for(user=request.user, case_id=case_id)
    except Case.DoesNotExist:
        raise Http404


@login_required
@require_GET
def case_detail(request, case_id: int):
    case = _case_or_404(request, case_id)
    return render(request, "web/service/case_detail.html", _case_context(request, case))


def _coupon_templates(case: Case) -> list:
    """The active coupons good at the case's unit: those of every unit and those that name it."""
    return list(CouponTemplate.objects.filter(Q(units__isnull=True) | Q(units=case.unit), is_active=True).distinct()
                .prefetch_related("units").order_by("name"))


def _case_context(request, case: Case, **extra) -> dict:
    now = timezone.now()
    templates = _coupon_templates(case)
    transitions = sorted(service.TRANSITIONS[CaseStatus(case.status)], key=list(CaseStatus.values).index)
    context = {
        "case": case,
        "masked_name": mask_name(case.customer.name),
        "entries": list(service_selectors.entries_of(case)),
        "goodwill": list(case.goodwill.select_related("given_by")),
        "transitions": [(s, _("Reopen") if case.status in (CaseStatus.RESOLVED, CaseStatus.CLOSED) and s == CaseStatus.IN_PROGRESS
                         else CaseStatus(s).label) for s in transitions],
        "overdue": case.status in (CaseStatus.NEW, CaseStatus.IN_PROGRESS) and case.due_at < now,
        "entry_form": EntryForm(),
        "goodwill_form": GoodwillForm(templates=templates),
        "may_give_points": service.is_manager(request.user),
        "staff": list(service_selectors.assignable_staff(case.unit)),
        "is_open": case.is_open,
        "priorities": Priority.choices,
        "invitations": list(SurveyInvitation.objects.filter(case=case).select_related("response", "survey")),
    }
    context.update(extra)
    return context


@login_required
@require_POST
def case_status(request, case_id: int):
    case = _case_or_404(request, case_id)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Unknown status."))
        return redirect("web:service_case", case_id=case.pk)
    try:
        case = service.change_status(actor=Actor.from_request(request), case=case, to_status=form.cleaned_data["status"],
                                     note=form.cleaned_data["note"], resolution=form.cleaned_data["resolution"])
    except (ValidationError, PermissionDenied) as exc:
        _flash_errors(request, exc)
    else:
        messages.success(request, _("Status: %(status)s") % {"status": case.get_status_display()})
    return redirect("web:service_case", case_id=case.pk)


@login_required
@require_POST
def case_entry(request, case_id: int):
    case = _case_or_404(request, case_id)
    form = EntryForm(request.POST)
    if form.is_valid():
        try:
            service.add_entry(actor=Actor.from_request(request), case=case, kind=form.cleaned_data["kind"], body=form.cleaned_data["body"])
        except (ValidationError, PermissionDenied) as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Reply sent to the customer.") if form.cleaned_data["kind"] == EntryKind.REPLY else _("Note added."))
            return redirect("web:service_case", case_id=case.pk)
    return render(request, "web/service/case_detail.html", _case_context(request, case, entry_form=form), status=400)


@login_required
@require_POST
def case_assign(request, case_id: int):
    case = _case_or_404(request, case_id)
    raw = request.POST.get("assignee", "")
    assignee = None
    if raw == "me":
        assignee = request.user
    elif raw:
        assignee = service_selectors.assignable_staff(case.unit).filter(pk=raw if raw.isdigit() else 0).first()
        if assignee is None:
            messages.error(request, _("Choose a colleague of %(unit)s.") % {"unit": case.unit.name})
            return redirect("web:service_case", case_id=case.pk)
    try:
        service.assign(actor=Actor.from_request(request), case=case, assignee=assignee)
    except (ValidationError, PermissionDenied) as exc:
        _flash_errors(request, exc)
    else:
        messages.success(request, _("Assigned to %(user)s.") % {"user": assignee.get_username()} if assignee else _("Back in the unit's queue."))
    return redirect("web:service_case", case_id=case.pk)


@login_required
@require_POST
def case_priority(request, case_id: int):
    case = _case_or_404(request, case_id)
    try:
        case = service.set_priority(actor=Actor.from_request(request), case=case, priority=request.POST.get("priority", ""))
    except (ValidationError, PermissionDenied) as exc:
        _flash_errors(request, exc)
    else:
        messages.success(request, _("Priority: %(priority)s; due %(due)s.") % {
            "priority": case.get_priority_display(), "due": timezone.localtime(case.due_at).strftime("%m-%d %H:%M")})
    return redirect("web:service_case", case_id=case.pk)


@login_required
@require_POST
def case_escalate(request, case_id: int):
    case = _case_or_404(request, case_id)
    try:
        case = service.escalate(actor=Actor.from_request(request), case=case)
    except (ValidationError, PermissionDenied) as exc:
        _flash_errors(request, exc)
    else:
        messages.success(request, _("Escalated to %(manager)s.") % {"manager": case.escalated_to.get_username() if case.escalated_to else "—"})
    return redirect("web:service_case", case_id=case.pk)


@login_required
@require_POST
def case_goodwill(request, case_id: int):
    case = _case_or_404(request, case_id)
    templates = _coupon_templates(case)
    form = GoodwillForm(request.POST, templates=templates)
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        actor = Actor.from_request(request)
        try:
            if data["kind"] == "points":
                if not data["points"]:
                    raise ValidationError({"points": [_("Give the number of points.")]})
                given = service.give_goodwill_points(actor=actor, case=case, points=data["points"], reason=data["reason"])
                text = _("%(points)s points given.") % {"points": f"{given.points:,}"}
            else:
                template = form.templates.get(data["template"]) if data["template"] else None
                given = service.give_goodwill_coupon(actor=actor, case=case, template=template, reason=data["reason"])
                text = _("Coupon given: %(name)s") % {"name": given.coupon_name}
        except PermissionDenied as exc:
            _add_errors(form, exc)
            status = 403
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, text)
            return redirect("web:service_case", case_id=case.pk)
    return render(request, "web/service/case_detail.html", _case_context(request, case, goodwill_form=form, goodwill_open=True),
                  status=status)


VIEWS = {
    "mine": gettext_lazy("My queue"),
    "overdue": gettext_lazy("Overdue"),
    "open": gettext_lazy("All open"),
    "closed": gettext_lazy("Resolved and closed"),
}


@login_required
@require_GET
def case_queue(request):
    """My cases: assigned to me, escalated to me, and the unit's unassigned ones; or the overdue list, every open
    case, the finished ones."""
    view = request.GET.get("view", "mine")
    view = view if view in VIEWS else "mine"
    user = request.user
    if view == "mine":
        qs = service_selectors.my_queue(user)
    elif view == "overdue":
        qs = service_selectors.overdue_cases(user)
    elif view == "open":
        qs = service_selectors.filtered_cases(user, status="open").order_by("due_at", "id")
    else:
        qs = service_selectors.filtered_cases(user).filter(status__in=[CaseStatus.RESOLVED, CaseStatus.CLOSED])
    page = Paginator(qs, QUEUE_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [{"case": c, "name": mask_name(c.customer.name),
             "overdue": c.status in (CaseStatus.NEW, CaseStatus.IN_PROGRESS) and c.due_at < now} for c in page]
    return render(request, "web/service/queue.html", {
        "page": page, "rows": rows, "view": view, "views": VIEWS.items(),
        "overdue_count": service_selectors.overdue_cases(user).count(),
    })


# --- KPIs and survey results (managers) ------------------------------------------------------------------------------------

PERIODS = {"30": 30, "90": 90, "180": 180, "365": 365}


@login_required
@require_GET
def service_kpis(request):
    if not is_manager(request.user):
        return render(request, "web/service/forbidden.html", status=403)
    days = PERIODS.get(request.GET.get("days", "90"), 90)
    units = list(units_for(request.user))
    unit = None
    code = request.GET.get("unit", "")
    if code:
        unit = next((u for u in units if u.code == code), None)
        if unit is None:
            raise Http404
    until = timezone.now()
    since = until - dt.timedelta(days=days)
    kpis = service_selectors.service_kpis(request.user, since=since, until=until, unit=unit)
    return render(request, "web/service/kpis.html", {
        "kpis": kpis, "s": kpis.surveys, "days": days, "periods": PERIODS, "units": units, "unit": unit,
        "overdue": list(service_selectors.overdue_cases(request.user).filter(**({"unit": unit} if unit else {}))[:10]),
    })


# --- public pages ----------------------------------------------------------------------------------------------------------

def _private(response):
    response["Cache-Control"] = "no-store, private"
    # same-origin, not no-referrer: with no-referrer a browser posts the form with "Origin: null", which CSRF refuses;
    # the signed link still never leaves the site in a Referer header.
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def public_request(request):
    """The public inquiry / A/S form: no login; honeypot, minimum fill time and a per-IP rate limit against spam."""
    units = list(BusinessUnit.objects.filter(is_active=True).order_by("name"))
    ip = client_ip(request)
    if request.method == "GET":
        initial = {"token": public.form_token()}
        code = request.GET.get("unit", "")
        chosen = next((u for u in units if u.code == code), None)
        if chosen:
            initial["unit"] = chosen.pk
        form = PublicRequestForm(initial=initial, units=units)
        return _private(render(request, "web/service/public_request.html", {"form": form}))
    if public.is_rate_limited(ip):
        return _private(render(request, "web/service/public_request.html", {
            "form": None, "limited": True}, status=429))
    form = PublicRequestForm(request.POST, units=units)
    if request.POST.get("website"):
        # A bot filled in the hidden field: answer as if it worked, write nothing.
        public.count_request(ip)
        return _private(render(request, "web/service/public_sent.html", {"number": None}))
    if form.is_valid():
        try:
            public.check_form_token(form.cleaned_data["token"])
        except ValidationError as exc:
            form.add_error(None, exc.messages[0])
        else:
            data = form.cleaned_data
            try:
                case = service.submit_public_request(unit=data["unit"], case_type=data["case_type"], name=data["name"],
                                                     phone=data["phone"], message=data["message"],
                                                     product_text=data["product_text"], ip=ip)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                public.count_request(ip)
                return _private(render(request, "web/service/public_sent.html", {"number": case.pk}))
    # A fresh token: the person now has read the form, the next send is not "too fast" by design of the clock.
    data = request.POST.copy()
    data["token"] = public.form_token()
    form.data = data
    return _private(render(request, "web/service/public_request.html", {"form": form}, status=400))


def _invitation_or_404(token: str) -> SurveyInvitation:
    invitation_id = service.read_survey_token(token)
    invitation = (SurveyInvitation.objects.select_related("survey", "unit", "customer").filter(pk=invitation_id).first()
                  if invitation_id else None)
    if invitation is None or invitation.customer.erased_at is not None:
        raise Http404
    return invitation


def _question(survey) -> str:
    if survey.question:
        return survey.question
    if survey.score_kind == ScoreKind.NPS:
        return _("How likely are you to recommend us to a friend or colleague?")
    return _("How satisfied are you with how we served you?")


@never_cache
@require_http_methods(["GET", "POST"])
def survey_answer(request, token: str):
    """The survey behind the signed link of an invitation: answered once; a wrong link is a 404."""
    invitation = _invitation_or_404(token)
    survey = invitation.survey
    low, high = service.score_range(survey.score_kind)
    context = {"invitation": invitation, "survey": survey, "question": _question(survey), "scores": range(low, high + 1),
               "questions": list(survey.questions.all()), "nps": survey.score_kind == ScoreKind.NPS, "errors": {}}
    if invitation.answered_at is not None:
        return _private(render(request, "web/service/survey_done.html", {**context, "already": True}))
    if invitation.expires_at <= timezone.now():
        return _private(render(request, "web/service/survey_done.html", {**context, "expired": True}, status=410))
    if request.method == "POST":
        answers = {str(q.pk): request.POST.get(f"q{q.pk}", "") for q in context["questions"]}
        try:
            service.answer_survey(invitation=invitation, score=request.POST.get("score"), comment=request.POST.get("comment", ""),
                                  answers=answers, ip=client_ip(request))
        except ValidationError as exc:
            errors = exc.message_dict
            if "survey" in errors:
                return _private(render(request, "web/service/survey_done.html", {**context, "already": True}))
            context.update(errors=errors, posted=request.POST)
            return _private(render(request, "web/service/survey.html", context, status=400))
        return _private(render(request, "web/service/survey_done.html", {**context, "thanks": True}))
    return _private(render(request, "web/service/survey.html", context))
