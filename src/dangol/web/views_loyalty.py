"""Loyalty in the staff app: the points panel of the 360° page (balance, tier, coupons, redeem with a confirmation
step, manual adjustments for managers, referral code), the member number lookup at the counter, the points history,
and the two public pages: the member card behind a signed link and the referral landing page.

Every POST works as a plain form (redirect and a message) and through htmx (the panel comes back in place)."""
from __future__ import annotations

import uuid

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dangol.core import audit
from dangol.core.audit import Actor, client_ip
from dangol.core.masking import mask_name
from dangol.core.selectors import units_for
from dangol.customers import selectors as customer_selectors
from dangol.customers import services as customer_services
from dangol.customers.models import Customer
from dangol.loyalty import card as member_card
from dangol.loyalty import rules
from dangol.loyalty import selectors as loyalty_selectors
from dangol.loyalty import services as loyalty_services
from dangol.loyalty import stamps as loyalty_stamps
from dangol.loyalty.models import Account, Coupon, EntryKind, Program

from .panels import Panel, customer_panel, nav_link
from .views import _customer_or_404

RECENT_ENTRIES = 5
HISTORY_PAGE = 50

nav_link("web:loyalty_member_lookup", gettext_lazy("Member card"), testid="nav-member")


# --- forms -----------------------------------------------------------------------------------------------------------

class UnitChoiceMixin:
    """A choice of the user's business units (already read for the page: no query of its own); hidden when there is
    only one. The cleaned value is the BusinessUnit."""

    def set_units(self, units, initial=None):
        field = self.fields["unit"]
        field.choices = [(unit.pk, unit.name) for unit in units]
        field.units = {unit.pk: unit for unit in units}
        if initial is not None:
            field.initial = initial.pk
        if len(units) == 1:
            field.widget = forms.HiddenInput()
            field.initial = units[0].pk
            field.required = False


class UnitField(forms.TypedChoiceField):
    units: dict = {}

    def __init__(self, **kwargs):
        super().__init__(coerce=int, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in (None, "") and len(self.units) == 1:
            return next(iter(self.units.values()))  # one unit: no need to say which
        return self.units.get(value) if value not in (None, "") else None


class RedeemForm(UnitChoiceMixin, forms.Form):
    points = forms.IntegerField(label=gettext_lazy("Points to redeem"), min_value=1, max_value=loyalty_services.MAX_POINTS,
                                widget=forms.NumberInput(attrs={"inputmode": "numeric", "autocomplete": "off"}))
    unit = UnitField(label=gettext_lazy("At"))
    request_id = forms.CharField(widget=forms.HiddenInput, max_length=64)
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, units, initial_unit=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.set_units(units, initial_unit)
        if not self.is_bound:
            self.fields["request_id"].initial = uuid.uuid4().hex


class StampForm(forms.Form):
    """One tap at the counter: how many stamps (1 unless changed) and the tap's request id, so that a double tap
    stamps once."""

    stamps = forms.IntegerField(label=gettext_lazy("Stamps"), min_value=1, max_value=100, initial=1,
                                widget=forms.NumberInput(attrs={"inputmode": "numeric", "autocomplete": "off"}))
    request_id = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.fields["request_id"].initial = uuid.uuid4().hex


class AdjustForm(forms.Form):
    points = forms.IntegerField(label=gettext_lazy("Points (+ to add, − to remove)"),
                                min_value=-loyalty_services.MAX_POINTS, max_value=loyalty_services.MAX_POINTS,
                                widget=forms.NumberInput(attrs={"inputmode": "numeric", "autocomplete": "off"}))
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300)


class ReferralForm(forms.Form):
    code = forms.CharField(label=gettext_lazy("Referral code"), max_length=20,
                           widget=forms.TextInput(attrs={"autocapitalize": "characters", "autocomplete": "off"}))


class CouponUseForm(UnitChoiceMixin, forms.Form):
    unit = UnitField(label=gettext_lazy("At"))
    amount_krw = forms.IntegerField(label=gettext_lazy("Purchase (KRW)"), min_value=0, max_value=10_000_000_000, required=False,
                                    help_text=gettext_lazy("Checks the minimum spend and records the discount."),
                                    widget=forms.NumberInput(attrs={"inputmode": "numeric", "data-testid": "coupon-amount"}))

    def __init__(self, *args, units, initial_unit=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.set_units(units, initial_unit)


class MemberLookupForm(UnitChoiceMixin, forms.Form):
    number = forms.CharField(label=gettext_lazy("Member number"), max_length=40,
                             widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "autofocus": True}))
    unit = UnitField(label=gettext_lazy("Your business unit"), required=False)

    def __init__(self, *args, units, **kwargs):
        super().__init__(*args, **kwargs)
        self.set_units(units)

    def clean_number(self):
        number = rules.normalize_member_number(self.cleaned_data["number"])
        if not number:
            raise ValidationError(_("A member number has 12 digits; check the number and try again."))
        return number


# --- the 360° panel ----------------------------------------------------------------------------------------------------

def _units(request):
    return list(units_for(request.user))


def _default_unit(request, customer):
    return customer_selectors.acting_unit(user=request.user, customer=customer)


def panel_context(request, customer: Customer, **extra) -> dict:
    account = loyalty_services.ensure_account(customer)
    units = _units(request)
    default = _default_unit(request, customer) if len(units) > 1 else None
    program = Program.current()
    context = {
        "customer": customer,
        "account": account,
        "summary": loyalty_selectors.points_summary(account, program=program),
        "entries": list(loyalty_selectors.entries_for(request.user, customer.pk)[:RECENT_ENTRIES]),
        "coupons": loyalty_selectors.wallet(customer.pk),
        "referral": loyalty_selectors.referral_overview(account, customer, program=program),
        "referral_url": request.build_absolute_uri(_referral_path(account)),
        "card_url": request.build_absolute_uri(member_card.card_path(account.member_number)),
        "redeem_form": RedeemForm(units=units, initial_unit=default, prefix="redeem"),
        "adjust_form": AdjustForm(prefix="adjust") if loyalty_services.may_adjust(request.user) else None,
        "referral_form": ReferralForm(prefix="referral"),
        "coupon_form": CouponUseForm(units=units, initial_unit=default, prefix="coupon"),
        "has_units": bool(units),
        "stamp_cards": _stamp_cards(customer, units),
    }
    context.update(extra)
    return context


def _stamp_cards(customer: Customer, units) -> list[dict]:
    """The stamp cards of the user's units (and any other card the customer holds stamps on), each with its one-tap
    form when the card belongs to one of the user's units."""
    mine = {unit.pk for unit in units}
    return [{"state": state, "form": StampForm(prefix=f"stamp{state.card.pk}")
             if state.card.unit_id in mine and state.card.is_active else None}
            for state in loyalty_stamps.card_states(customer.pk, unit_ids=sorted(mine))]


def _referral_path(account: Account) -> str:
    from django.urls import reverse

    return reverse("web:loyalty_referral_landing", kwargs={"code": account.referral_code})


@customer_panel(order=20)
def points_panel(request, customer):
    return Panel("web/loyalty/_customer_panel.html", panel_context(request, customer))


def _panel_response(request, customer, status=200, **extra):
    """The panel alone (htmx), or back to the 360° page with the messages (problems included)."""
    if request.htmx:
        return render(request, "web/loyalty/_panel_body.html", {"panel": panel_context(request, customer, **extra)},
                      status=status)
    problems = list(extra.get("redeem_problem") or []) + list(extra.get("coupon_problem") or []) + list(
        extra.get("stamp_problem") or [])
    for key in ("redeem_form", "adjust_form", "referral_form"):
        form = extra.get(key)
        if form is not None and form.is_bound and form.errors:
            problems += [str(e) for errors in form.errors.values() for e in errors]
    for problem in problems:
        messages.error(request, problem)
    return redirect("web:customer_detail", customer_id=customer.pk)


def _errors(exc: ValidationError | PermissionDenied) -> list[str]:
    if isinstance(exc, PermissionDenied):
        return [str(exc) or _("Your role may not do this.")]
    return [str(m) for m in exc.messages]


@login_required
@require_GET
def loyalty_panel(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    return render(request, "web/loyalty/_panel_body.html", {"panel": panel_context(request, customer)})


@login_required
@require_POST
def loyalty_redeem(request, customer_id: int):
    """Step one shows what will happen and asks to confirm; step two redeems. A double tap on Confirm sends the same
    request id, which redeems once."""
    customer = _customer_or_404(request, customer_id)
    units = _units(request)
    form = RedeemForm(request.POST, units=units, prefix="redeem")
    if not units:
        messages.error(request, _("Your account has no business unit yet. Ask an admin to assign one."))
        return _panel_response(request, customer, status=403)
    if not form.is_valid():
        return _panel_response(request, customer, redeem_form=form, redeem_errors=True)
    points, unit = form.cleaned_data["points"], form.cleaned_data["unit"]
    if not form.cleaned_data["confirm"]:
        account = loyalty_services.ensure_account(customer)
        balance = loyalty_selectors.balance_of(account.pk)
        if points > balance:
            form.add_error("points", _("Only %(available)s points are available.") % {"available": f"{balance:,}"})
            return _panel_response(request, customer, redeem_form=form, redeem_errors=True)
        confirm_form = RedeemForm(initial={"points": points, "unit": unit.pk, "request_id": form.cleaned_data["request_id"],
                                           "confirm": True}, units=units, prefix="redeem")
        confirm = {"customer": customer, "points": points, "unit": unit, "balance": balance, "after": balance - points,
                   "form": confirm_form, "value_krw": points * Program.current().point_value_krw}
        if request.htmx:
            return _panel_response(request, customer, confirm=confirm)
        return render(request, "web/loyalty/redeem_confirm.html", {"confirm": confirm})
    try:
        entry = loyalty_services.redeem_points(actor=Actor.from_request(request), customer=customer, points=points, unit=unit,
                                               idempotency_key=f"web:{form.cleaned_data['request_id']}")
    except ValidationError as exc:
        for message in _errors(exc):
            form.add_error(None, message)
        return _panel_response(request, customer, redeem_form=RedeemForm(units=units, prefix="redeem"),
                               redeem_problem=_errors(exc))
    messages.success(request, _("%(points)s points redeemed.") % {"points": f"{-entry.points:,}"})
    return _panel_response(request, customer, done=_("%(points)s points redeemed.") % {"points": f"{-entry.points:,}"})


@login_required
@require_POST
def loyalty_stamp(request, customer_id: int, card_id: int):
    """One tap at the counter: a stamp on the card of the user's unit (the reward coupon comes by itself at the
    target). A double tap sends the same request id, which stamps once."""
    customer = _customer_or_404(request, customer_id)
    units = {unit.pk: unit for unit in _units(request)}
    card = loyalty_stamps.active_card_by_id(card_id)
    if card is None or card.unit_id not in units:
        raise Http404
    form = StampForm(request.POST, prefix=f"stamp{card.pk}")
    if not form.is_valid():
        return _panel_response(request, customer, stamp_problem=[e for errors in form.errors.values() for e in errors])
    try:
        result = loyalty_stamps.stamp(actor=Actor.from_request(request), customer=customer, unit=units[card.unit_id],
                                      stamps=form.cleaned_data["stamps"],
                                      idempotency_key=f"web:{form.cleaned_data['request_id']}")
    except ValidationError as exc:
        return _panel_response(request, customer, stamp_problem=_errors(exc))
    text = _("Stamped: %(have)s of %(target)s on %(card)s.") % {"have": result.stamps, "target": result.target,
                                                                "card": card.name}
    if result.coupon_ids:
        text += " " + _("The card was full: %(reward)s is in the wallet.") % {"reward": card.reward.name}
    messages.success(request, text)
    return _panel_response(request, customer, done=text)


@login_required
@require_POST
def loyalty_adjust(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    if not loyalty_services.may_adjust(request.user):
        return render(request, "web/partials/forbidden.html", status=403)
    form = AdjustForm(request.POST, prefix="adjust")
    if form.is_valid():
        try:
            entry = loyalty_services.adjust_points(actor=Actor.from_request(request), customer=customer,
                                                   points=form.cleaned_data["points"], reason=form.cleaned_data["reason"],
                                                   unit=_default_unit(request, customer))
        except (ValidationError, PermissionDenied) as exc:
            for message in _errors(exc):
                form.add_error(None, message)
        else:
            text = _("%(points)s points adjusted.") % {"points": f"{entry.points:+,}"}
            messages.success(request, text)
            return _panel_response(request, customer, done=text)
    return _panel_response(request, customer, adjust_form=form, adjust_open=True)


@login_required
@require_POST
def loyalty_link_referral(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    form = ReferralForm(request.POST, prefix="referral")
    if form.is_valid():
        try:
            loyalty_services.link_referral(actor=Actor.from_request(request), customer=customer, code=form.cleaned_data["code"])
        except ValidationError as exc:
            for message in _errors(exc):
                form.add_error("code", message)
        else:
            text = _("Referral code accepted: both are rewarded at the first purchase.")
            messages.success(request, text)
            return _panel_response(request, customer, done=text)
    return _panel_response(request, customer, referral_form=form)


@login_required
@require_POST
def loyalty_use_coupon(request, customer_id: int, coupon_id: int):
    customer = _customer_or_404(request, customer_id)
    coupon = Coupon.objects.filter(pk=coupon_id, customer=customer).first()
    if coupon is None:
        raise Http404
    form = CouponUseForm(request.POST, units=_units(request), prefix="coupon")
    problem = None
    if form.is_valid():
        try:
            used = loyalty_services.use_coupon(actor=Actor.from_request(request), coupon=coupon, unit=form.cleaned_data["unit"],
                                               amount_krw=form.cleaned_data.get("amount_krw"))
        except ValidationError as exc:
            problem = _errors(exc)
        else:
            text = _("Coupon used: %(name)s") % {"name": used.template.name}
            messages.success(request, text)
            return _panel_response(request, customer, done=text)
    else:
        problem = [e for errors in form.errors.values() for e in errors]
    return _panel_response(request, customer, coupon_problem=problem)


@login_required
@require_GET
def loyalty_history(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    account = loyalty_services.ensure_account(customer)
    page = Paginator(loyalty_selectors.entries_for(request.user, customer.pk), HISTORY_PAGE).get_page(request.GET.get("page"))
    return render(request, "web/loyalty/history.html", {
        "customer": customer, "account": account, "summary": loyalty_selectors.points_summary(account, with_progress=False),
        "page": page, "tiers": loyalty_selectors.tier_history(customer.pk),
        "coupons": Coupon.objects.filter(customer=customer).select_related("template", "used_unit").order_by("-issued_at")[:50],
        "kinds": EntryKind,
    })


# --- the counter: find a member by number ------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def member_lookup(request):
    """The number on a member card (typed, or sent by a barcode scanner that types): the member's 360° page. A member
    of another business unit of the group becomes known to the clerk's unit (audited): points are earned and spent
    anywhere in the group."""
    units = _units(request)
    form = MemberLookupForm(request.POST or None, units=units)
    if request.method == "POST" and form.is_valid():
        customer = loyalty_selectors.find_member(form.cleaned_data["number"])
        if customer is None:
            form.add_error("number", _("No member has this number."))
        elif customer_selectors.customers_for(request.user).filter(pk=customer.pk).exists():
            return redirect("web:customer_detail", customer_id=customer.pk)
        elif not units:
            form.add_error(None, _("Your account has no business unit yet. Ask an admin to assign one."))
        else:
            unit = form.cleaned_data.get("unit") or units[0]
            customer_services.link_to_unit(actor=Actor.from_request(request), customer=customer, unit=unit)
            messages.success(request, _("Member of another business unit of the group: now also known at %(unit)s.")
                             % {"unit": unit.name})
            return redirect("web:customer_detail", customer_id=customer.pk)
    return render(request, "web/loyalty/member_lookup.html", {"form": form})


# --- public pages --------------------------------------------------------------------------------------------------------

def _qr_svg(text: str) -> str:
    """The QR code as inline SVG (segno writes only its own markup: digits in, paths out)."""
    return segno.make(text, error="m").svg_inline(scale=5, border=2, dark="#1d2330", light="#ffffff", omitsize=True)


def _private(response):
    response["Cache-Control"] = "no-store, private"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@never_cache
@require_GET
def member_card_page(request, token: str):
    """The member card behind a signed link sent in a message: tier, points, expiring points, coupons and a QR code
    of the member number. No login; a wrong or expired link answers 404, like a card that does not exist."""
    client = client_ip(request)
    if member_card.client_is_blocked(client):
        raise Http404
    number = member_card.read_card_token(token)
    data = loyalty_selectors.member_card(number) if number else None
    if data is None and number:
        customer = loyalty_selectors.find_member(number)
        if customer is not None:
            loyalty_services.ensure_account(customer)
            data = loyalty_selectors.member_card(number)
    if data is None:
        member_card.count_bad_token(client)
        raise Http404
    audit.record(actor=Actor(user=None, ip=client, via="card"), action="loyalty.card_view", obj=data.customer,
                 fields=["points", "tier", "coupons"])
    response = render(request, "web/loyalty/card.html", {
        "data": data, "masked_name": mask_name(data.customer.name), "summary": data.summary,
        "stamp_cards": loyalty_stamps.card_states(data.customer.pk, with_empty=False),
        "qr": mark_safe(_qr_svg(data.account.member_number)),
        "number": rules.display_member_number(data.account.member_number),
    })
    return _private(response)


@require_GET
def referral_landing(request, code: str):
    """Where a member's referral link leads: the code to show at a counter of the group when joining."""
    code = loyalty_services.normalize_code(code)
    if not code or not Account.objects.filter(referral_code=code).exists():
        raise Http404
    response = render(request, "web/loyalty/referral.html", {"code": code, "qr": mark_safe(_qr_svg(code)),
                                                             "program": Program.current()})
    return _private(response)

