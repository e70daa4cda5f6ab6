"""Service endpoints: cases (list, open, read, move along the workflow, notes and replies). Same authentication,
error shape and unit scope as the rest of the API; integration tokens need the ``cases:read`` / ``cases:write``
scopes. A case outside your business units answers 404, like one that does not exist."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from dangol.core.masking import mask_name
from dangol.core.models import User
from dangol.sales.models import Order, Product
from dangol.service import selectors as service_selectors
from dangol.service import services as service
from dangol.service.models import Case, CaseChannel, CaseStatus, CaseType, EntryKind, Priority

from .serializers import ErrorSerializer
from .views import ApiPagination, ApiView, api_actor, error_responses, unit_in_scope, visible_customer

TAGS = ["service"]
CASE_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Case id.")


class CaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.IntegerField(source="customer_id")
    customer_name = serializers.SerializerMethodField(help_text="Masked (김*늘).")
    unit = serializers.CharField(source="unit.code")
    type = serializers.CharField(source="case_type")
    channel = serializers.CharField()
    priority = serializers.CharField()
    status = serializers.CharField()
    subject = serializers.CharField()
    description = serializers.CharField()
    order = serializers.IntegerField(source="order_id", allow_null=True)
    product = serializers.IntegerField(source="product_id", allow_null=True)
    assignee = serializers.SerializerMethodField()
    opened_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    overdue = serializers.SerializerMethodField()
    first_response_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    resolution = serializers.CharField()
    escalated_at = serializers.DateTimeField(allow_null=True)
    escalated_to = serializers.SerializerMethodField()
    reopen_count = serializers.IntegerField()

    def get_customer_name(self, case) -> str:
        return mask_name(case.customer.name)

    def get_assignee(self, case) -> str | None:
        return case.assignee.get_username() if case.assignee_id else None

    def get_escalated_to(self, case) -> str | None:
        return case.escalated_to.get_username() if case.escalated_to_id else None

    def get_overdue(self, case) -> bool:
        from django.utils import timezone

        return case.status in (CaseStatus.NEW, CaseStatus.IN_PROGRESS) and case.due_at < timezone.now()


class CaseEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    body = serializers.CharField()
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    at = serializers.DateTimeField()
    by = serializers.SerializerMethodField()
    message = serializers.IntegerField(source="message_id", allow_null=True, help_text="The message of a reply.")

    def get_by(self, entry) -> str:
        return entry.author.get_username() if entry.author_id else ""


class CaseDetailSerializer(CaseSerializer):
    entries = serializers.SerializerMethodField()

    def get_entries(self, case) -> list[dict]:
        return CaseEntrySerializer(service_selectors.entries_of(case), many=True).data


class CaseFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[("open", "open"), *CaseStatus.choices], required=False, default="")
    type = serializers.ChoiceField(choices=CaseType.choices, required=False, default="")
    unit = serializers.CharField(required=False, default="", max_length=40)
    customer = serializers.IntegerField(required=False, min_value=1)
    overdue = serializers.BooleanField(required=False, default=False)


class CaseCreateSerializer(serializers.Serializer):
    customer = serializers.IntegerField(min_value=1)
    unit = serializers.CharField(required=False, default="", max_length=40, help_text="Business unit code; optional with one unit.")
    type = serializers.ChoiceField(choices=CaseType.choices)
    channel = serializers.ChoiceField(choices=CaseChannel.choices, default=CaseChannel.PHONE)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    subject = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, default="", allow_blank=True, max_length=5000)
    order = serializers.IntegerField(required=False, min_value=1)
    product = serializers.IntegerField(required=False, min_value=1)
    assignee = serializers.CharField(required=False, default="", allow_blank=True, max_length=150, help_text="A username.")
    confirm = serializers.BooleanField(default=True, help_text="Send the customer a confirmation message.")


class CaseStatusChangeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=CaseStatus.choices)
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=5000)
    resolution = serializers.CharField(required=False, default="", allow_blank=True, max_length=5000)


class CaseEntryCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[(EntryKind.NOTE, "internal note"), (EntryKind.REPLY, "reply, sent to the customer")])
    body = serializers.CharField(max_length=5000)


def case_in_scope(user, case_id: int) -> Case:
    try:
        return service_selectors.case_for(user=user, case_id=case_id)
    except Case.DoesNotExist:
        raise Http404


class CaseListCreateView(ApiView, GenericAPIView):
    pagination_class = ApiPagination
    serializer_class = CaseSerializer

    @extend_schema(operation_id="cases_list", tags=TAGS, summary="Cases of your business units",
                   description="Newest first; `overdue=true` lists the open cases past their due time (not those waiting "
                               "for the customer), soonest due first.",
                   parameters=[CaseFilterSerializer], responses={200: CaseSerializer(many=True), **error_responses(400, 401, 403)})
    def get(self, request):
        params = CaseFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        unit = unit_in_scope(request.user, values["unit"]) if values["unit"] else None
        if values["overdue"]:
            qs = service_selectors.overdue_cases(request.user)
            qs = qs.filter(unit=unit) if unit else qs
        else:
            qs = service_selectors.filtered_cases(request.user, status=values["status"], case_type=values["type"], unit=unit,
                                                  customer_id=values.get("customer"))
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(CaseSerializer(page, many=True).data)

    @extend_schema(operation_id="cases_create", tags=TAGS, summary="Open a case",
                   description="The due time comes from the SLA rule of the type and priority. Without a subject the first "
                               "line of the description is used. The customer gets a confirmation message unless "
                               "`confirm` is false.",
                   request=CaseCreateSerializer, responses={201: CaseDetailSerializer, **error_responses(400, 401, 403, 404)})
    def post(self, request):
        body = CaseCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        customer = visible_customer(request.user, values["customer"])
        unit = unit_in_scope(request.user, values["unit"])
        errors = {}
        order = product = assignee = None
        if values.get("order"):
            order = Order.objects.filter(pk=values["order"], customer=customer).first()
            if order is None:
                errors["order"] = [_("This order is not the customer's.")]
        if values.get("product"):
            product = Product.objects.filter(pk=values["product"]).first()
            if product is None:
                errors["product"] = [_("There is no such product.")]
        if values["assignee"]:
            assignee = User.objects.filter(username=values["assignee"], is_active=True).first()
            if assignee is None:
                errors["assignee"] = [_("There is no such user.")]
        if errors:
            raise exceptions.ValidationError(errors)
        case = service.open_case(actor=api_actor(request), customer=customer, unit=unit, case_type=values["type"],
                                 channel=values["channel"], priority=values["priority"], subject=values["subject"],
                                 description=values["description"], order=order, product=product, assignee=assignee,
                                 confirm=values["confirm"])
        return Response(CaseDetailSerializer(case_in_scope(request.user, case.pk)).data, status=status.HTTP_201_CREATED)


class CaseDetailView(ApiView):
    @extend_schema(operation_id="cases_retrieve", tags=TAGS, summary="A case with its history",
                   description="`entries` holds internal notes, replies sent to the customer, status changes, "
                               "assignments, escalations and goodwill.",
                   parameters=[CASE_ID], responses={200: CaseDetailSerializer, **error_responses(401, 404)})
    def get(self, request, pk: int):
        return Response(CaseDetailSerializer(case_in_scope(request.user, pk)).data)


class CaseStatusView(ApiView):
    @extend_schema(operation_id="cases_status", tags=TAGS, summary="Move a case along its workflow",
                   description="new → in_progress → waiting → resolved → closed; `in_progress` from resolved or closed "
                               "reopens. Any other move is a 400 that lists the possible ones. Closing sends the "
                               "satisfaction survey.",
                   parameters=[CASE_ID], request=CaseStatusChangeSerializer,
                   responses={200: CaseDetailSerializer, 403: OpenApiResponse(ErrorSerializer, description="Not your unit."),
                              **error_responses(400, 401, 404)})
    def post(self, request, pk: int):
        case = case_in_scope(request.user, pk)
        body = CaseStatusChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        try:
            service.change_status(actor=api_actor(request), case=case, to_status=values["status"], note=values["note"],
                                  resolution=values["resolution"])
        except DjangoPermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc))
        return Response(CaseDetailSerializer(case_in_scope(request.user, pk)).data)


class CaseEntryView(ApiView):
    @extend_schema(operation_id="cases_entries_create", tags=TAGS, summary="Add an internal note or a reply",
                   description="A reply is sent to the customer as an informational message.",
                   parameters=[CASE_ID], request=CaseEntryCreateSerializer,
                   responses={201: CaseEntrySerializer, **error_responses(400, 401, 404)})
    def post(self, request, pk: int):
        case = case_in_scope(request.user, pk)
        body = CaseEntryCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        entry = service.add_entry(actor=api_actor(request), case=case, kind=body.validated_data["kind"],
                                  body=body.validated_data["body"])
        return Response(CaseEntrySerializer(entry).data, status=status.HTTP_201_CREATED)
