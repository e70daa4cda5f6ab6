"""Segment endpoints: the segments you may use, a segment's members (paginated, masked) and counts — of a saved
segment or of a rule tree sent in the request (the builder's live count). Integration tokens need ``segments:read``
(``segments:write`` for the POST that counts a tree)."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from dangol.campaigns import rules as segment_rules
from dangol.campaigns import selectors
from dangol.campaigns.models import Segment
from dangol.core.masking import mask_name
from dangol.core.phones import mask_phone
from dangol.customers.selectors import with_list_columns

from .views import ApiPagination, ApiView, error_responses, unit_in_scope

TAGS = ["segments"]
SEGMENT_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Segment id.")


class SegmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.CharField(help_text="dynamic (rules evaluated when used) or static (a frozen or imported list)")
    unit = serializers.CharField(allow_null=True, help_text="code of the unit whose members it selects; null: the group")
    rules = serializers.JSONField()
    member_count = serializers.IntegerField(allow_null=True, help_text="static segments: members when frozen or imported")
    created_at = serializers.DateTimeField()


class MemberSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="masked")
    phone = serializers.CharField(help_text="masked")
    sido = serializers.CharField()
    sigungu = serializers.CharField()


CountSerializer = inline_serializer("SegmentCount", {"count": serializers.IntegerField()})


def segment_in_scope(user, segment_id: int) -> Segment:
    segment = selectors.segments_for(user).select_related("unit").filter(pk=segment_id).first()
    if segment is None:
        raise Http404
    return segment


def segment_out(segment: Segment) -> dict:
    return {"id": segment.pk, "name": segment.name, "description": segment.description, "kind": segment.kind,
            "unit": segment.unit.code if segment.unit else None, "rules": segment.rules, "member_count": segment.member_count,
            "created_at": segment.created_at}


class SegmentListView(ApiView, GenericAPIView):
    pagination_class = ApiPagination

    @extend_schema(operation_id="segments_list", tags=TAGS, summary="Segments of your business units",
                   responses={200: SegmentSerializer(many=True), **error_responses(401)})
    def get(self, request):
        page = self.paginate_queryset(selectors.segments_for(request.user).select_related("unit").order_by("id"))
        return self.get_paginated_response([segment_out(s) for s in page])


class SegmentMembersView(ApiView, GenericAPIView):
    pagination_class = ApiPagination

    @extend_schema(operation_id="segments_members_list", tags=TAGS, summary="Members of a segment (masked)",
                   description="The customers the segment selects now, within your business units, by id.",
                   parameters=[SEGMENT_ID], responses={200: MemberSerializer(many=True), **error_responses(401, 404)})
    def get(self, request, pk: int):
        segment = segment_in_scope(request.user, pk)
        qs = with_list_columns(selectors.segment_customers(segment, user=request.user)).order_by("pk")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response([
            {"id": c.pk, "name": mask_name(c.name), "phone": mask_phone(c.primary_phone) if c.primary_phone else "",
             "sido": c.region_sido or "", "sigungu": c.region_sigungu or ""} for c in page])


class SegmentCountView(ApiView):
    @extend_schema(operation_id="segments_count_retrieve", tags=TAGS, summary="How many customers a segment selects now",
                   parameters=[SEGMENT_ID], responses={200: CountSerializer, **error_responses(401, 404)})
    def get(self, request, pk: int):
        segment = segment_in_scope(request.user, pk)
        return Response({"count": selectors.segment_customers(segment, user=request.user).order_by().count()})


class RulesCountInSerializer(serializers.Serializer):
    rules = serializers.JSONField(help_text='{"op": "and"|"or", "rules": [{"field", "operator", "value", "days"?, "unit"?} | group]}')
    unit = serializers.CharField(required=False, allow_blank=True, help_text="unit code; empty: all your units")


class RulesCountView(ApiView):
    required_scope = "segments:read"

    @extend_schema(operation_id="segments_rules_count", tags=TAGS, summary="Count the customers of a rule tree",
                   description="The builder's live count: the tree is validated (unknown fields, operators or bad values "
                               "answer 400) and counted within your business units.",
                   request=RulesCountInSerializer, responses={200: CountSerializer, **error_responses(400, 401, 403)})
    def post(self, request):
        data = RulesCountInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        code = data.validated_data.get("unit") or ""
        unit = unit_in_scope(request.user, code) if code else None
        try:
            tree = segment_rules.clean_tree(data.validated_data["rules"])
            return Response({"count": selectors.count_matching(tree, unit=unit, user=request.user)})
        except ValidationError as exc:
            raise exceptions.ValidationError({"rules": exc.messages})


# --- campaigns: status and results (read-only; drafting and approval stay in the staff app) ------------------------

CAMPAIGN_TAGS = ["campaigns"]
CAMPAIGN_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Campaign id.")


class CampaignSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    unit = serializers.CharField(allow_null=True, help_text="code of the sending unit; null: the group")
    segment = serializers.IntegerField(help_text="segment id")
    channel = serializers.CharField()
    kind = serializers.CharField(help_text="ad or info")
    status = serializers.CharField()
    holdout_pct = serializers.IntegerField()
    send_at = serializers.DateTimeField(allow_null=True)
    recurrence = serializers.CharField()
    approved_at = serializers.DateTimeField(allow_null=True)
    last_sent_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class GroupSerializer(serializers.Serializer):
    label = serializers.CharField()
    customers = serializers.IntegerField()
    buyers = serializers.IntegerField()
    revenue = serializers.IntegerField(help_text="KRW, net, within the attribution window")
    per_customer = serializers.FloatField()
    uplift = inline_serializer("CampaignUplift", {
        "difference": serializers.FloatField(help_text="KRW per customer, treated − holdout"),
        "low": serializers.FloatField(), "high": serializers.FloatField(help_text="95 % confidence interval"),
        "significant": serializers.BooleanField(),
    }, allow_null=True)


class CampaignResultsSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    messages = serializers.DictField(child=serializers.IntegerField(), help_text="messages per status")
    clicks = serializers.IntegerField()
    coupons_issued = serializers.IntegerField()
    coupons_used = serializers.IntegerField()
    treated = GroupSerializer()
    holdout = GroupSerializer()
    variants = GroupSerializer(many=True)
    message_cost = serializers.IntegerField(help_text="KRW")
    coupon_discounts = serializers.IntegerField(help_text="KRW taken off by the used coupons whose discount is known")
    incremental_revenue = serializers.FloatField(help_text="KRW")
    roi = serializers.FloatField(allow_null=True)
    window_start = serializers.DateTimeField(allow_null=True)
    window_end = serializers.DateTimeField(allow_null=True)


def campaign_in_scope(user, campaign_id: int):
    campaign = selectors.campaigns_for(user).select_related("unit").filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404
    return campaign


def campaign_out(c) -> dict:
    return {"id": c.pk, "name": c.name, "unit": c.unit.code if c.unit else None, "segment": c.segment_id,
            "channel": c.channel, "kind": c.kind, "status": c.status, "holdout_pct": c.holdout_pct, "send_at": c.send_at,
            "recurrence": c.recurrence, "approved_at": c.approved_at, "last_sent_at": c.last_sent_at,
            "created_at": c.created_at}


def _group(g) -> dict:
    u = g.uplift
    return {"label": str(g.label), "customers": g.customers, "buyers": g.buyers, "revenue": int(g.revenue),
            "per_customer": float(g.per_customer),
            "uplift": None if u is None else {"difference": u.difference, "low": u.low, "high": u.high,
                                              "significant": u.significant}}


class CampaignListView(ApiView, GenericAPIView):
    pagination_class = ApiPagination

    @extend_schema(operation_id="campaigns_list", tags=CAMPAIGN_TAGS, summary="Campaigns of your business units",
                   responses={200: CampaignSerializer(many=True), **error_responses(401)})
    def get(self, request):
        page = self.paginate_queryset(selectors.campaigns_for(request.user).select_related("unit").order_by("id"))
        return self.get_paginated_response([campaign_out(c) for c in page])


class CampaignDetailView(ApiView):
    @extend_schema(operation_id="campaigns_retrieve", tags=CAMPAIGN_TAGS, summary="A campaign and its status",
                   parameters=[CAMPAIGN_ID], responses={200: CampaignSerializer, **error_responses(401, 404)})
    def get(self, request, pk: int):
        return Response(campaign_out(campaign_in_scope(request.user, pk)))


class CampaignResultsView(ApiView):
    @extend_schema(operation_id="campaigns_results", tags=CAMPAIGN_TAGS, summary="What a campaign earned",
                   description="Messages by status, clicks, coupons, and revenue of the recipients within the "
                               "attribution window against the holdout (uplift with a 95 % confidence interval), per "
                               "variant, and ROI. 404 until the campaign has been sent.",
                   parameters=[CAMPAIGN_ID], responses={200: CampaignResultsSerializer, **error_responses(401, 404)})
    def get(self, request, pk: int):
        from dangol.campaigns.results import campaign_results

        campaign = campaign_in_scope(request.user, pk)
        result = campaign_results(campaign)
        if result is None:
            raise Http404
        return Response({
            "campaign": campaign.pk, "messages": result.messages, "clicks": result.clicks,
            "coupons_issued": result.coupons_issued, "coupons_used": result.coupons_used,
            "treated": _group(result.treated), "holdout": _group(result.holdout),
            "variants": [_group(v) for v in result.variants], "message_cost": result.message_cost,
            "coupon_discounts": result.discounts,
            "incremental_revenue": float(result.incremental_revenue), "roi": result.roi,
            "window_start": result.window_start, "window_end": result.window_end})
