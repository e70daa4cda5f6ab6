"""REST endpoints: parse with a serializer, check the unit scope, call a service or selector, render.

Services raise django ValidationError keyed by field; ``dangol.api.errors.exception_handler`` turns it into a 400,
and the service's transaction has already left the database as it was.
"""
from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from django.core.exceptions import RequestDataTooBig
from rest_framework.response import Response
from rest_framework.views import APIView

from dangol.core import audit
from dangol.core.audit import Actor, client_ip
from dangol.core.models import BusinessUnit, User
from dangol.core.permissions import Action, may
from dangol.core.phones import try_normalize_phone
from dangol.core.selectors import units_for
from dangol.customers import selectors as customer_selectors
from dangol.customers import services as customer_services
from dangol.customers.models import ConsentSource, Customer
from dangol.customers.services import CustomerInput, DateParts
from dangol.sales import selectors as sales_selectors
from dangol.sales import services as sales_services

from . import idempotency
from .errors import Conflict
from .filters import customers_matching
from .pagination import ApiPagination
from .parsers import StrictJSONParser
from .serializers import (
    CustomerCreateSerializer,
    CustomerDetailSerializer,
    CustomerFilterSerializer,
    CustomerListItemSerializer,
    CustomerWriteSerializer,
    DuplicatePhoneErrorSerializer,
    ErrorSerializer,
    OrderCreateSerializer,
    OrderSerializer,
    PhoneLookupSerializer,
    consent_inputs,
    customer_input,
)
from .throttling import TokenRateThrottle


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class ApiView(APIView):
    """JSON in, JSON out, throttled per token (``dangol.api.throttling``), scopes of integration tokens checked
    (``dangol.api.permissions``), and POSTs made safe to retry with an ``Idempotency-Key`` header
    (``dangol.api.idempotency``)."""

    parser_classes = [StrictJSONParser]
    throttle_classes = [TokenRateThrottle]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # DRF reads the body as a stream, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE check: apply the limit here.
        length = request.META.get("CONTENT_LENGTH") or "0"
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(_("The request body is too large."))

    def dispatch(self, request, *args, **kwargs):
        # DRF's dispatch, with the idempotency claim between authentication and the handler.
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        record = replay = None
        try:
            try:
                self.initial(request, *args, **kwargs)
                if request.method.lower() in self.http_method_names:
                    handler = getattr(self, request.method.lower(), self.http_method_not_allowed)
                else:
                    handler = self.http_method_not_allowed
                key = idempotency.key_of(request) if request.method == "POST" and handler != self.http_method_not_allowed else None
                if key is not None:
                    try:
                        request.body_for_idempotency = request._request.body
                    except RequestDataTooBig:
                        raise PayloadTooLarge(_("The request body is too large."))
                    record, replay = idempotency.claim(request, key)
                if replay is not None:
                    response = Response(replay.response_body, status=replay.status_code,
                                        headers={"Idempotent-Replayed": "true"})
                else:
                    response = handler(request, *args, **kwargs)
            except Exception as exc:
                response = self.handle_exception(exc)
        except BaseException:
            if record is not None and replay is None:
                idempotency.release(record)  # the request never got an answer: the key may be retried
            raise
        if record is not None and replay is None:
            idempotency.store(record, response)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response


ERROR_MEANINGS = {
    400: "Invalid input or malformed JSON; `errors` lists the messages per field.",
    401: "No token, or a wrong one.",
    403: "A business unit outside your scope.",
    404: "Not found, or outside your business units.",
    409: "The phone number already belongs to a customer.",
}


def error_responses(*codes: int) -> dict:
    """The documented error answers of an operation (the shape is built by ``dangol.api.errors``)."""
    return {code: OpenApiResponse(DuplicatePhoneErrorSerializer if code == 409 else ErrorSerializer,
                                  description=ERROR_MEANINGS[code])
            for code in codes}


def api_actor(request) -> Actor:
    return Actor(user=request.user, ip=client_ip(request), via="api")


def unit_in_scope(user: User, code: str | None, *, required: bool = True) -> BusinessUnit | None:
    """The business unit named by ``code``; without a code, the user's only unit.

    Unknown code: 400. A unit outside the user's scope: 403. No code and several units: 400 when ``required``.
    """
    scope = units_for(user)
    if not code:
        own = list(scope[:2])
        if len(own) == 1:
            return own[0]
        if not own and required:
            raise exceptions.PermissionDenied(_("Your account has no business unit yet. Ask an admin to assign one."))
        if required:
            raise exceptions.ValidationError({"unit": [_("Give the code of the business unit: you work at several.")]})
        return None
    unit = BusinessUnit.objects.filter(code=code).first()
    if unit is None:
        raise exceptions.ValidationError({"unit": [_("There is no business unit “%(code)s”.") % {"code": code}]})
    if not scope.filter(pk=unit.pk).exists():
        raise exceptions.PermissionDenied(_("You cannot work with business unit “%(code)s”.") % {"code": code})
    return unit


def visible_customer(user: User, customer_id: int) -> Customer:
    try:
        return customer_selectors.get_customer_for(user=user, customer_id=customer_id)
    except Customer.DoesNotExist:
        # Outside the user's units looks the same as not existing: no probing of other units' customers.
        raise Http404


def refuse_duplicate_phone(user: User, raw_phone: str, *, exclude_id: int | None = None) -> None:
    """409 when the number is already on file; an invalid number is left for the service to report."""
    e164 = try_normalize_phone(raw_phone) if raw_phone.strip() else None
    if not e164:
        return
    matches = customer_selectors.customers_with_phone(user=user, phone_e164=e164, exclude_id=exclude_id)
    if matches.visible or matches.elsewhere:
        raise Conflict(
            _("This phone number already belongs to a customer. Send “allow_duplicate”: true to save anyway."),
            code="duplicate_phone",
            errors={"phone": [_("Another customer has this phone number.")]},
            extra={"duplicates": {"ids": [c.pk for c in matches.visible], "elsewhere": matches.elsewhere}},
        )


def current_input(customer: Customer) -> CustomerInput:
    """The customer's present profile as the services' input, for a PATCH to change only what it names."""
    state = customer_services.snapshot(customer)
    sido, sigungu, line, postal_code = state["address"]

    def parts(values):
        if values is None:
            return None
        year, month, day, is_lunar, is_leap_month = values
        return DateParts(year=year, month=month, day=day, is_lunar=is_lunar, is_leap_month=is_leap_month)

    return CustomerInput(
        name=state["name"], phone=state["phone"], email=state["email"], gender=state["gender"], stage=state["stage"],
        sido=sido, sigungu=sigungu, address_line=line, postal_code=postal_code,
        birthday=parts(state["birthday"]), wedding=parts(state["wedding"]), tags=list(state["tags"]),
    )


def customer_response(request, customer_id: int, *, status_code: int = status.HTTP_200_OK) -> Response:
    """The profile; full contacts for managers and admins, each such showing audited, masked for staff."""
    customer = visible_customer(request.user, customer_id)
    reveal = may(request.user, Action.VIEW_FULL_CONTACTS)
    if reveal:
        audit.record(actor=api_actor(request), action="customer.view_contacts", obj=customer, fields=["phone", "email"])
    context = {"reveal_contacts": reveal, "consents": customer_selectors.consent_overview(customer)}
    return Response(CustomerDetailSerializer(customer, context=context).data, status=status_code)


class CustomerListMixin:
    pagination_class = ApiPagination
    serializer_class = CustomerListItemSerializer

    def list_response(self, request, params: dict) -> Response:
        fast = self.counter_lookup(request, params)
        if fast is not None:
            return fast
        unit = unit_in_scope(request.user, params["unit"]) if params.get("unit") else None
        qs = customers_matching(
            customer_selectors.customers_for(request.user), q=params.get("q", ""), phone_e164=params.get("phone", ""),
            last4=params.get("last4", ""), stage=params.get("stage", ""), unit=unit, tag=params.get("tag", ""),
        )
        qs = customer_selectors.with_list_columns(qs).prefetch_related("tags").order_by("-joined_at", "-id")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(CustomerListItemSerializer(page, many=True).data)


    def counter_lookup(self, request, params: dict) -> Response | None:
        """A lookup by phone (or last four digits) alone, first page: one hand-written query, same response shape."""
        only = {k for k, v in params.items() if v}
        if only not in ({"phone"}, {"last4"}) or request.query_params.get("offset") not in (None, "", "0") \
                or "cursor" in request.query_params:
            return None
        limit = self.paginator.get_limit(request)
        rows = customer_selectors.phone_lookup(user=request.user, phone_e164=params.get("phone", ""),
                                               last4=params.get("last4", ""), limit=limit + 1)
        if len(rows) > limit:
            return None  # more than a page: the general path pages and counts
        data = CustomerListItemSerializer(rows, many=True).data
        return Response({"count": len(rows), "next": None, "previous": None, "results": data})


class CustomerListCreateView(CustomerListMixin, ApiView, GenericAPIView):
    @extend_schema(
        operation_id="customers_list", tags=["customers"], summary="List and search customers",
        description="Customers of your business units, newest first. Names and contacts are masked in every row. "
                    "`GET /api/v1/customers?phone=010-1234-5678` is the phone lookup.",
        parameters=[CustomerFilterSerializer], responses={200: CustomerListItemSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request):
        params = CustomerFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return self.list_response(request, params.validated_data)

    @extend_schema(
        operation_id="customers_create", tags=["customers"], summary="Register a customer",
        description="Registers the customer at `unit`. A phone number already on file gives 409 unless "
                    "`allow_duplicate` is true.",
        request=CustomerCreateSerializer, responses={201: CustomerDetailSerializer, **error_responses(400, 401, 403, 409)},
    )
    def post(self, request):
        body = CustomerCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        unit = unit_in_scope(request.user, values.get("unit"))
        data = customer_input(values)
        if not values["allow_duplicate"]:
            refuse_duplicate_phone(request.user, data.phone)
        customer = customer_services.create_customer(
            actor=api_actor(request), unit=unit, data=data, consents=consent_inputs(values) or [],
            consent_source=ConsentSource.API, consent_method=values.get("consent_method", ""),
            consent_evidence=values.get("consent_evidence", ""),
        )
        return customer_response(request, customer.pk, status_code=status.HTTP_201_CREATED)


class CustomerLookupView(CustomerListMixin, ApiView, GenericAPIView):
    @extend_schema(
        operation_id="customers_lookup", tags=["customers"], summary="Find customers by phone number",
        description="The same as `GET /api/v1/customers?phone=…`, with the phone number required.",
        parameters=[PhoneLookupSerializer], responses={200: CustomerListItemSerializer(many=True), **error_responses(400, 401)},
    )
    def get(self, request):
        params = PhoneLookupSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return self.list_response(request, params.validated_data)


CUSTOMER_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Customer id.")


class CustomerDetailView(ApiView):
    @extend_schema(
        operation_id="customers_retrieve", tags=["customers"], summary="A customer's profile", parameters=[CUSTOMER_ID],
        description="Managers and admins get full phone numbers and emails, and each such view is audited; "
                    "staff get them masked (`contacts_masked: true`).",
        responses={200: CustomerDetailSerializer, **error_responses(401, 404)},
    )
    def get(self, request, pk: int):
        return customer_response(request, pk)

    @extend_schema(
        operation_id="customers_partial_update", tags=["customers"], summary="Change a customer",
        description="Only the fields given change. `consents` lists consents given or withdrawn now. "
                    "A new phone number already on file gives 409 unless `allow_duplicate` is true.",
        parameters=[CUSTOMER_ID], request=CustomerWriteSerializer,
        responses={200: CustomerDetailSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def patch(self, request, pk: int):
        customer = visible_customer(request.user, pk)
        body = CustomerWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        unit = unit_in_scope(request.user, values.get("unit"), required=False)
        current = current_input(customer)
        data = customer_input(values, base=current)
        if "phone" in values and not values["allow_duplicate"] and try_normalize_phone(data.phone) != current.phone:
            refuse_duplicate_phone(request.user, data.phone, exclude_id=customer.pk)
        customer_services.update_customer(
            actor=api_actor(request), customer=customer, data=data, consents=consent_inputs(values), unit=unit,
            consent_source=ConsentSource.API, consent_method=values.get("consent_method", ""),
            consent_evidence=values.get("consent_evidence", ""),
        )
        return customer_response(request, pk)


class CustomerOrdersView(ApiView, GenericAPIView):
    pagination_class = ApiPagination
    serializer_class = OrderSerializer

    @extend_schema(
        operation_id="customers_orders_list", tags=["orders"], summary="A customer's orders",
        description="Sales and refunds at your business units, newest first, with their lines.",
        parameters=[CUSTOMER_ID], responses={200: OrderSerializer(many=True), **error_responses(401, 404)},
    )
    def get(self, request, pk: int):
        if not customer_selectors.customers_for(request.user).filter(pk=pk).exists():
            raise Http404
        page = self.paginate_queryset(sales_selectors.orders_of_customer(user=request.user, customer_id=pk))
        return self.get_paginated_response(OrderSerializer(page, many=True).data)


def order_output(user: User, order_id: int) -> dict:
    order = sales_selectors.orders_for(user).select_related("unit").prefetch_related("lines__product").get(pk=order_id)
    return OrderSerializer(order).data


class OrderCreateView(ApiView):
    @extend_schema(
        operation_id="orders_create", tags=["orders"], summary="Record a sale",
        description="Totals are computed from the lines; `unit_price` defaults to the product's list price. "
                    "Problems of a line are reported under `lines` as `\"<line number>: <problem>\"`.",
        request=OrderCreateSerializer, responses={201: OrderSerializer, **error_responses(400, 401, 403)},
    )
    def post(self, request):
        body = OrderCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        unit = unit_in_scope(request.user, values["unit"])
        customer = customer_selectors.customers_for(request.user).filter(pk=values["customer"]).first()
        if customer is None:
            raise exceptions.ValidationError({"customer": [_("There is no customer with this id in your business units.")]})
        order = sales_services.record_order(
            actor=api_actor(request), unit=unit, customer=customer, lines=body.line_inputs(), at=values.get("ordered_at"),
            channel=values["channel"], external_ref=values.get("external_ref", ""),
        )
        return Response(order_output(request.user, order.pk), status=status.HTTP_201_CREATED)


class OrderRefundView(ApiView):
    @extend_schema(
        operation_id="orders_refund", tags=["orders"], summary="Refund a sale",
        description="Refunds the whole sale now as a negative order. A sale is refunded at most once. No body.",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="Id of the sale.")],
        request=None, responses={201: OrderSerializer, **error_responses(400, 401, 404)},
    )
    def post(self, request, pk: int):
        order = sales_selectors.orders_for(request.user).filter(pk=pk).first()
        if order is None:
            raise Http404
        refund = sales_services.record_refund(actor=api_actor(request), order=order)
        return Response(order_output(request.user, refund.pk), status=status.HTTP_201_CREATED)

