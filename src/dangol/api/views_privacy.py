"""Privacy endpoints: a customer's consent evidence, granting and withdrawing a consent (as simple as each other),
data-subject requests against their ten-day deadline, and the export of everything about a customer (with a reason,
written to the access log). Same authentication, error shape and unit scope as the rest of the API."""
from __future__ import annotations

from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from dangol.core.models import User
from dangol.customers import selectors as customer_selectors
from dangol.customers.models import Channel, ConsentKind, ConsentSource, Customer, NoticeVersion, Purpose
from dangol.privacy import selectors as privacy_selectors
from dangol.privacy import services as privacy
from dangol.privacy.export import build_export
from dangol.privacy.models import AccessReasonCode, DataSubjectRequest, ReceivedVia, RequestKind, RequestStatus

from .serializers import AwareDateTimeField, StrictSerializer
from .views import ApiPagination, ApiView, api_actor, error_responses

CUSTOMER_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Customer id.")
REQUEST_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Request id.")
TAGS = ["privacy"]


def customer_in_scope(user: User, customer_id: int) -> Customer:
    customer = customer_selectors.customers_for(user).filter(pk=customer_id).first()
    if customer is None:
        raise Http404
    return customer


def require(allowed: bool) -> None:
    if not allowed:
        raise exceptions.PermissionDenied(_("Your role may not do this."))


# ---- serializers ----

class NoticeSerializer(serializers.Serializer):
    kind = serializers.CharField()
    version = serializers.CharField()
    title = serializers.CharField()
    purpose = serializers.CharField()
    items = serializers.CharField()
    retention = serializers.CharField()


class ConsentRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ConsentKind.choices)
    channel = serializers.CharField(help_text="Empty for the required and optional collection consents.")
    purpose = serializers.CharField()
    granted = serializers.BooleanField()
    at = serializers.DateTimeField()
    source = serializers.CharField(help_text="How it came: store, phone, web, app, import, api.")
    unit = serializers.SerializerMethodField()
    method = serializers.CharField()
    recorded_by = serializers.SerializerMethodField()
    notice = NoticeSerializer(allow_null=True)

    def get_unit(self, obj) -> str:
        return obj.unit.code if obj.unit_id else ""

    def get_recorded_by(self, obj) -> str:
        return obj.recorded_by.get_username() if obj.recorded_by_id else ""


class ConsentsSerializer(serializers.Serializer):
    in_force = ConsentRecordSerializer(many=True)
    history = ConsentRecordSerializer(many=True)


class ConsentChangeSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=ConsentKind.choices, default=ConsentKind.MARKETING)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, allow_blank=True,
                                      help_text="Marketing consents only.")
    purpose = serializers.ChoiceField(choices=Purpose.choices, required=False, allow_blank=True,
                                      help_text="Marketing consents only; default marketing.")
    source = serializers.ChoiceField(choices=ConsentSource.choices, default=ConsentSource.API)
    method = serializers.CharField(required=False, allow_blank=True, max_length=60)


class ConsentGrantSerializer(ConsentChangeSerializer):
    granted = serializers.BooleanField(default=True)
    notice_version = serializers.CharField(required=False, allow_blank=True, max_length=20,
                                           help_text="The notice version shown; default the one in force.")


class ExportQuerySerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=AccessReasonCode.choices, help_text="Why the export is needed (logged).")
    reason_detail = serializers.CharField(required=False, allow_blank=True, max_length=200)


class RequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.IntegerField(source="customer_id")
    kind = serializers.ChoiceField(choices=RequestKind.choices)
    status = serializers.ChoiceField(choices=RequestStatus.choices)
    received_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    received_via = serializers.CharField()
    overdue = serializers.SerializerMethodField()
    completed_at = serializers.DateTimeField(allow_null=True)
    outcome = serializers.CharField()

    def get_overdue(self, obj) -> bool:
        from django.utils import timezone

        return obj.is_open and obj.due_at < timezone.now()


class RequestCreateSerializer(StrictSerializer):
    customer = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    kind = serializers.ChoiceField(choices=RequestKind.choices)
    received_via = serializers.ChoiceField(choices=ReceivedVia.choices, default=ReceivedVia.WEB)
    received_at = AwareDateTimeField(required=False, help_text="Default now; with its offset.")
    details = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class RequestCloseSerializer(StrictSerializer):
    outcome = serializers.CharField(required=False, allow_blank=True, max_length=500)


class RequestFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[("open", "open"), *RequestStatus.choices], required=False, allow_blank=True)


def consents_payload(customer: Customer) -> dict:
    history = customer.consents.select_related("notice", "unit", "recorded_by").order_by("-at", "-id")[:500]
    return {"in_force": ConsentRecordSerializer(privacy.consents_in_force(customer), many=True).data,
            "history": ConsentRecordSerializer(history, many=True).data}


# ---- views ----

class ConsentsView(ApiView):
    @extend_schema(
        operation_id="customers_consents_retrieve", tags=TAGS, summary="A customer's consents and their evidence",
        description="The consents in force and the full history, each with the notice shown (purpose, items, retention, "
                    "version), the channel it came through, when, where, how and who recorded it.",
        parameters=[CUSTOMER_ID], responses={200: ConsentsSerializer, **error_responses(401, 404)},
    )
    def get(self, request, pk: int):
        return Response(consents_payload(customer_in_scope(request.user, pk)))

    @extend_schema(
        operation_id="customers_consents_create", tags=TAGS, summary="Record a consent given or withdrawn",
        description="`kind` marketing needs a `channel`; required and optional consents have none. The notice in force "
                    "is recorded unless `notice_version` names another of the same kind.",
        parameters=[CUSTOMER_ID], request=ConsentGrantSerializer,
        responses={201: ConsentsSerializer, **error_responses(400, 401, 404)},
    )
    def post(self, request, pk: int):
        customer = customer_in_scope(request.user, pk)
        body = ConsentGrantSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        notice = None
        if values.get("notice_version"):
            notice = NoticeVersion.objects.filter(kind=values["kind"], version=values["notice_version"]).first()
            if notice is None:
                raise exceptions.ValidationError({"notice_version": [_("There is no such notice version.")]})
        privacy.record_consent(actor=api_actor(request), customer=customer, kind=values["kind"], granted=values["granted"],
                               channel=values.get("channel", ""), purpose=values.get("purpose", ""), source=values["source"],
                               method=values.get("method", ""), notice=notice,
                               unit=customer_selectors.acting_unit(user=request.user, customer=customer))
        return Response(consents_payload(customer), status=status.HTTP_201_CREATED)


class ConsentWithdrawView(ApiView):
    @extend_schema(
        operation_id="customers_consents_withdraw", tags=TAGS, summary="Withdraw a consent in force",
        description="One call, as simple as granting: the consent named by kind (and channel and purpose for marketing) "
                    "is withdrawn now. Withdrawing advertising on a channel withdraws its night-time consent too.",
        parameters=[CUSTOMER_ID], request=ConsentChangeSerializer,
        responses={200: ConsentsSerializer, **error_responses(400, 401, 404)},
    )
    def post(self, request, pk: int):
        customer = customer_in_scope(request.user, pk)
        body = ConsentChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        privacy.withdraw_consent(actor=api_actor(request), customer=customer, kind=values["kind"],
                                 channel=values.get("channel", ""), purpose=values.get("purpose", ""), source=values["source"],
                                 unit=customer_selectors.acting_unit(user=request.user, customer=customer))
        return Response(consents_payload(customer))


class ExportView(ApiView):
    @extend_schema(
        operation_id="customers_export_retrieve", tags=TAGS, summary="Everything held about a customer",
        description="Managers and admins. Full personal data: profile, contacts, addresses, anniversaries, preferences, "
                    "consents, orders, points, timeline, unit ids, requests. `reason` is required; the account, time, IP, "
                    "customer and reason are written to the access log.",
        parameters=[CUSTOMER_ID, ExportQuerySerializer],
        responses={200: inline_serializer("CustomerExport", {"format": serializers.CharField(),
                                                              "profile": serializers.DictField()}),
                   **error_responses(400, 401, 403, 404)},
    )
    def get(self, request, pk: int):
        customer = customer_in_scope(request.user, pk)
        require(privacy.may_handle_requests(request.user))
        query = ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        privacy.record_access(actor=api_actor(request), obj=customer, action="privacy.export_json",
                              reason=query.validated_data["reason"], reason_detail=query.validated_data.get("reason_detail", ""),
                              fields=["export"])
        return Response(build_export(customer))


class RequestListCreateView(ApiView, GenericAPIView):
    pagination_class = ApiPagination
    serializer_class = RequestSerializer

    @extend_schema(
        operation_id="privacy_requests_list", tags=TAGS, summary="Data-subject requests",
        description="Requests of the customers of your business units, the nearest deadline first. `overdue` is true "
                    "for an open request past its due date (10 days after receipt).",
        parameters=[RequestFilterSerializer], responses={200: RequestSerializer(many=True), **error_responses(400, 401)},
    )
    def get(self, request):
        params = RequestFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        qs = privacy_selectors.requests_for(request.user).order_by("due_at", "id")
        wanted = params.validated_data.get("status")
        if wanted == "open":
            qs = qs.filter(status__in=[RequestStatus.RECEIVED, RequestStatus.IN_PROGRESS])
        elif wanted:
            qs = qs.filter(status=wanted)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(RequestSerializer(page, many=True).data)

    @extend_schema(
        operation_id="privacy_requests_create", tags=TAGS, summary="Register a data-subject request",
        description="Access, correction, deletion or suspension; due 10 days after `received_at`.",
        request=RequestCreateSerializer, responses={201: RequestSerializer, **error_responses(400, 401, 404)},
    )
    def post(self, request):
        body = RequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        customer = customer_in_scope(request.user, values["customer"])
        dsr = privacy.open_request(actor=api_actor(request), customer=customer, kind=values["kind"],
                                   received_via=values["received_via"], details=values.get("details", ""),
                                   received_at=values.get("received_at"),
                                   unit=customer_selectors.acting_unit(user=request.user, customer=customer))
        return Response(RequestSerializer(dsr).data, status=status.HTTP_201_CREATED)


def request_in_scope(user: User, request_id: int) -> DataSubjectRequest:
    dsr = privacy_selectors.requests_for(user).filter(pk=request_id).first()
    if dsr is None:
        raise Http404
    return dsr


class RequestDetailView(ApiView):
    @extend_schema(operation_id="privacy_requests_retrieve", tags=TAGS, summary="A data-subject request",
                   parameters=[REQUEST_ID], responses={200: RequestSerializer, **error_responses(401, 404)})
    def get(self, request, pk: int):
        return Response(RequestSerializer(request_in_scope(request.user, pk)).data)


class RequestCompleteView(ApiView):
    @extend_schema(
        operation_id="privacy_requests_complete", tags=TAGS, summary="Answer a request",
        description="Managers and admins. A suspension request suspends processing; a deletion request erases the "
                    "customer (admins only: it cannot be undone). Corrections are made through the customer endpoint, "
                    "then the request is answered here.",
        parameters=[REQUEST_ID], request=RequestCloseSerializer,
        responses={200: RequestSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, pk: int):
        dsr = request_in_scope(request.user, pk)
        require(privacy.may_handle_requests(request.user))
        if dsr.kind == RequestKind.DELETION:
            require(privacy.may_erase(request.user))
        body = RequestCloseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dsr = privacy.complete_request(actor=api_actor(request), request=dsr, outcome=body.validated_data.get("outcome", ""))
        return Response(RequestSerializer(dsr).data)


class RequestRefuseView(ApiView):
    @extend_schema(
        operation_id="privacy_requests_refuse", tags=TAGS, summary="Refuse a request, with the reason told",
        parameters=[REQUEST_ID], request=RequestCloseSerializer,
        responses={200: RequestSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, pk: int):
        dsr = request_in_scope(request.user, pk)
        require(privacy.may_handle_requests(request.user))
        body = RequestCloseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dsr = privacy.refuse_request(actor=api_actor(request), request=dsr, outcome=body.validated_data.get("outcome", ""))
        return Response(RequestSerializer(dsr).data)



