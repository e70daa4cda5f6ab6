"""Staff app views: parse input, check scope, call a service or selector, render. One view serves the full page
and its htmx fragment where a page updates in place."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dangol.core import audit
from dangol.core.audit import Actor
from dangol.core.masking import mask_email
from dangol.core.phones import mask_phone, try_normalize_phone
from dangol.core.selectors import units_for
from dangol.customers import selectors as customer_selectors
from dangol.customers import services as customer_services
from dangol.customers.anniversaries import next_occurrence
from dangol.customers.models import Customer, Stage
from dangol.sales import selectors as sales_selectors
from dangol.sales import services as sales_services
from dangol.sales.models import Product, SalesChannel

from .forms import CustomerForm, NoteForm, OrderForm, PreferenceForm, initial_from_customer
from .panels import panels_for


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True


def add_service_errors(form, exc: ValidationError, own_fields_except=frozenset()) -> None:
    """A service's ValidationError shown on the form: next to the field it names, or above the form."""
    for field, errors in exc.message_dict.items():
        target = field if field in form.fields and field not in own_fields_except else None
        for error in errors:
            form.add_error(target, error)


def _customer_or_404(request, customer_id: int) -> Customer:
    try:
        return customer_selectors.get_customer_for(user=request.user, customer_id=customer_id)
    except Customer.DoesNotExist:
        # Outside the user's units looks the same as not existing: no probing of other units' customers.
        raise Http404


@login_required
@require_GET
def home(request):
    counts = customer_selectors.stage_counts(request.user)
    return render(request, "web/home.html", {
        "stage_counts": [(value, label, counts[value]) for value, label in Stage.choices],
        "units": units_for(request.user),
    })


@login_required
@require_GET
def customer_search(request):
    query = request.GET.get("q", "")[:100]
    results = list(customer_selectors.search_customers(user=request.user, query=query))
    template = "web/partials/search_results.html" if request.htmx else "web/search.html"
    return render(request, template, {"query": query, "results": results})


@login_required
@require_GET
def customer_detail(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    today = timezone.localdate()
    anniversaries = [
        {"record": a, "next": next_occurrence(month=a.month, day=a.day, is_lunar=a.is_lunar, is_leap_month=a.is_leap_month, today=today)}
        for a in customer.anniversaries.all()
    ]
    return render(request, "web/customer_detail.html", {
        "customer": customer,
        "consents": customer_selectors.consent_grid(customer),
        "anniversaries": anniversaries,
        "timeline": customer_selectors.timeline_page(user=request.user, customer=customer),
        "note_form": NoteForm(),
        "preference_form": PreferenceForm(),
        "may_reveal": request.user.may_see_full_contacts,
        "panels": panels_for(request, customer),
    })


@login_required
@require_GET
def customer_timeline(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    page = customer_selectors.timeline_page(user=request.user, customer=customer, before=request.GET.get("before", "")[:40])
    return render(request, "web/partials/timeline_page.html", {"customer": customer, "timeline": page})


@login_required
@require_POST
def customer_reveal_contacts(request, customer_id: int):
    """Full phone numbers and emails, for managers and admins only, each reveal audited."""
    customer = _customer_or_404(request, customer_id)
    if not request.user.may_see_full_contacts:
        return render(request, "web/partials/forbidden.html", status=403)
    audit.record(actor=Actor.from_request(request), action="customer.view_contacts", obj=customer, fields=["phone", "email"])
    return render(request, "web/partials/contacts.html", {"customer": customer, "revealed": True, "may_reveal": True})


def _form_context(request, form, customer=None, duplicates=None):
    return {"form": form, "customer": customer, "duplicates": duplicates}


@login_required
@require_http_methods(["GET", "POST"])
def customer_create(request):
    units = units_for(request.user)
    if not units.exists():
        messages.error(request, _("Your account has no business unit yet. Ask an admin to assign one."))
        return redirect("web:home")
    form = CustomerForm(request.POST or None, units=units)
    duplicates = None
    if request.method == "POST" and form.is_valid():
        data = form.to_input()
        duplicates = _duplicate_warning(request, form, data.phone)
        if duplicates is None:
            try:
                customer = customer_services.create_customer(
                    actor=Actor.from_request(request), unit=form.cleaned_data["unit"], data=data,
                    consents=form.to_consents(), consent_method=form.cleaned_data["consent_method"],
                    consent_evidence=form.cleaned_data["consent_evidence"],
                )
            except ValidationError as exc:
                form.apply_service_errors(exc)
            else:
                messages.success(request, _("Customer saved."))
                return redirect("web:customer_detail", customer_id=customer.pk)
    return render(request, "web/customer_form.html", _form_context(request, form, duplicates=duplicates))


@login_required
@require_http_methods(["GET", "POST"])
def customer_edit(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    full = request.user.may_see_full_contacts
    version = customer_services.profile_version(customer)
    initial = initial_from_customer(customer, customer_services.current_consents(customer), full_contacts=full, version=version)
    form = CustomerForm(request.POST or None, initial=initial, masked_contacts=None if full else _masked_contacts(customer))
    if request.method == "GET" and full and customer.contacts.exists():
        # The form shows the full phone, email and street address: that is a view of contact details.
        audit.record(actor=Actor.from_request(request), action="customer.view_contacts", obj=customer,
                     fields=["phone", "email", "address"])
    duplicates = None
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data.get("version") != version:
            form.add_error(None, _("Someone changed this customer while you were editing. Reload the page and make your change again."))
            return render(request, "web/customer_form.html", _form_context(request, form, customer=customer), status=409)
        data = form.to_input()
        if not full:
            _keep_hidden_contacts(customer, data)
        duplicates = _duplicate_warning(request, form, data.phone, exclude_id=customer.pk)
        if duplicates is None:
            try:
                customer_services.update_customer(
                    actor=Actor.from_request(request), customer=customer, data=data, consents=form.to_consents(),
                    unit=customer_selectors.acting_unit(user=request.user, customer=customer),
                    consent_method=form.cleaned_data["consent_method"], consent_evidence=form.cleaned_data["consent_evidence"],
                )
            except ValidationError as exc:
                form.apply_service_errors(exc)
            else:
                messages.success(request, _("Changes saved."))
                return redirect("web:customer_detail", customer_id=customer.pk)
    return render(request, "web/customer_form.html", _form_context(request, form, customer=customer, duplicates=duplicates))


def _masked_contacts(customer: Customer) -> dict:
    masked = {}
    for contact in customer.contacts.all():
        if contact.is_primary:
            masked[contact.kind] = mask_phone(contact.value) if contact.kind == "phone" else mask_email(contact.value)
    address = customer.addresses.filter(is_primary=True).first()
    if address and address.line:
        masked["address_line"] = "***"
    return masked


def _keep_hidden_contacts(customer: Customer, data) -> None:
    """Staff edit with masked contacts: an empty field keeps what is on file."""
    current = customer_services.snapshot(customer)
    if not data.phone:
        data.phone = current["phone"]
    if not data.email:
        data.email = current["email"]
    if not data.address_line:
        data.address_line = current["address"][2]


def _duplicate_warning(request, form, raw_phone: str, exclude_id: int | None = None):
    """The matches to warn about, or None when the save may go ahead."""
    e164 = try_normalize_phone(raw_phone) if raw_phone else None
    if not e164 or form.cleaned_data.get("confirm_duplicate"):
        return None
    matches = customer_selectors.customers_with_phone(user=request.user, phone_e164=e164, exclude_id=exclude_id)
    if matches.visible or matches.elsewhere:
        return matches
    return None


@login_required
@require_GET
def check_phone(request):
    """htmx: warn about a duplicate phone number while the form is being filled in."""
    raw = request.GET.get("phone", "")[:30]
    exclude = request.GET.get("customer")
    exclude_id = int(exclude) if exclude and exclude.isdigit() and len(exclude) < 19 else None
    if exclude_id and not customer_selectors.customers_for(request.user).filter(pk=exclude_id).exists():
        exclude_id = None  # excluding a customer one cannot see would tell whether that customer has this phone
    e164 = try_normalize_phone(raw) if raw.strip() else None
    matches = None
    if e164:
        matches = customer_selectors.customers_with_phone(user=request.user, phone_e164=e164, exclude_id=exclude_id)
        if not (matches.visible or matches.elsewhere):
            matches = None
    return render(request, "web/partials/phone_check.html", {"duplicates": matches, "invalid": bool(raw.strip()) and not e164})


@login_required
@require_POST
def customer_add_note(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            customer_services.add_note(actor=Actor.from_request(request), customer=customer,
                                       unit=customer_selectors.acting_unit(user=request.user, customer=customer),
                                       text=form.cleaned_data["text"], kind=form.cleaned_data["kind"])
        except ValidationError as exc:
            add_service_errors(form, exc)
    if form.errors:
        return render(request, "web/partials/note_form.html", {"customer": customer, "note_form": form}, status=422 if not request.htmx else 200)
    if request.htmx:
        response = render(request, "web/partials/note_saved.html", {
            "customer": customer, "note_form": NoteForm(),
            "timeline": customer_selectors.timeline_page(user=request.user, customer=customer),
        })
        return response
    return redirect("web:customer_detail", customer_id=customer.pk)


@login_required
@require_POST
def customer_add_preference(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    form = PreferenceForm(request.POST)
    if form.is_valid():
        try:
            customer_services.add_preference(actor=Actor.from_request(request), customer=customer,
                                             unit=customer_selectors.acting_unit(user=request.user, customer=customer),
                                             topic=form.cleaned_data["topic"], value=form.cleaned_data["value"])
        except ValidationError as exc:
            add_service_errors(form, exc)
    if form.errors:
        return render(request, "web/partials/preferences.html", {"customer": customer, "preference_form": form})
    if request.htmx:
        customer = _customer_or_404(request, customer_id)
        return render(request, "web/partials/preferences.html", {"customer": customer, "preference_form": PreferenceForm()})
    return redirect("web:customer_detail", customer_id=customer.pk)


@login_required
@require_http_methods(["GET", "POST"])
def order_create(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    units = units_for(request.user)
    products = Product.objects.filter(unit__in=units, is_active=True).select_related("unit").order_by("unit__name", "name")
    form = OrderForm(request.POST or None, units=units, products=products, channels=SalesChannel.choices)
    if request.method == "POST" and form.is_valid():
        lines = [sales_services.LineInput(product_id=p, quantity=q, unit_price=price) for p, q, price in form.cleaned_data["lines"]]
        try:
            sales_services.record_order(actor=Actor.from_request(request), unit=form.cleaned_data["unit"], customer=customer,
                                        lines=lines, channel=form.cleaned_data["channel"])
        except ValidationError as exc:
            add_service_errors(form, exc, own_fields_except={"lines"})
        else:
            messages.success(request, _("Purchase recorded."))
            return redirect("web:customer_detail", customer_id=customer.pk)
    return render(request, "web/order_form.html", {"form": form, "customer": customer})


@login_required
@require_GET
def customer_orders(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    orders = sales_selectors.orders_of_customer(user=request.user, customer_id=customer.pk)[:100]
    return render(request, "web/customer_orders.html", {"customer": customer, "orders": orders})


def bad_request(request, exception=None):
    return HttpResponseBadRequest(_("Bad request."))
