"""Loyalty endpoints: a customer's points and wallet, redemption at a counter, adjustments by managers, coupons,
referrals and the member number lookup. Same authentication, error shape and unit scope as the rest of the API."""
from __future__ import annotations

from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from dangol.core.models import User
from dangol.core.selectors import units_for
from dangol.customers import selectors as customer_selectors
from dangol.customers import services as customer_services
from dangol.customers.models import Customer
from dangol.loyalty import card as member_card
from dangol.loyalty import selectors as loyalty_selectors
from dangol.loyalty import services as loyalty_services
from dangol.loyalty import stamps as loyalty_stamps
from dangol.loyalty.models import Coupon

from .serializers import ErrorSerializer, StrictSerializer
from .serializers_loyalty import (
    AdjustSerializer,
    CouponSerializer,
    CouponUseSerializer,
    EntrySerializer,
    MemberLookupResultSerializer,
    MemberLookupSerializer,
    PointsSerializer,
    RedeemResultSerializer,
    RedeemSerializer,
    ReferralInSerializer,
    ReferralOutSerializer,
    StampCardStateSerializer,
    StampInSerializer,
    StampResultSerializer,
)
from .views import ApiPagination, ApiView, api_actor, error_responses, unit_in_scope

CUSTOMER_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Customer id.")
TAGS = ["loyalty"]


def customer_in_scope(user: User, customer_id: int) -> Customer:
    """One query: the counter's hot path does not need the profile's prefetches."""
    customer = customer_selectors.customers_for(user).filter(pk=customer_id).first()
    if customer is None:
        raise Http404
    return customer


def tier_out(tier) -> dict | None:
    return {"code": tier.code, "name": tier.name, "benefits": tier.benefits} if tier else None


def points_payload(request, customer: Customer) -> dict:
    account = loyalty_services.ensure_account(customer)
    summary = loyalty_selectors.points_summary(account)
    return {
        "customer": customer.pk, "member_number": account.member_number, "balance": summary.balance,
        "points_owed": summary.owed, "expiring_points": summary.expiring_points, "first_expiry": summary.first_expiry,
        "tier": tier_out(summary.tier), "tier_since": summary.tier_since, "downgrade_at": summary.downgrade_at,
        "next_tier": tier_out(summary.next_tier), "to_next_tier": summary.to_next_tier, "tier_basis": summary.tier_basis,
        "referral_code": account.referral_code,
        "card_url": request.build_absolute_uri(member_card.card_path(account.member_number)),
        "coupons": CouponSerializer(loyalty_selectors.wallet(customer.pk), many=True).data,
        "recent_entries": EntrySerializer(loyalty_selectors.entries_for(request.user, customer.pk)[:10], many=True).data,
    }


class PointsView(ApiView):
    @extend_schema(
        operation_id="customers_points_retrieve", tags=TAGS, summary="A customer's points, tier and coupons",
        description="Points are group-wide: earned at any business unit, spent at any. `recent_entries` lists the entries "
                    "of your business units (and those tied to none).",
        parameters=[CUSTOMER_ID], responses={200: PointsSerializer, **error_responses(401, 404)},
    )
    def get(self, request, pk: int):
        customer = customer_in_scope(request.user, pk)
        return Response(points_payload(request, customer))


class EntriesView(ApiView, GenericAPIView):
    pagination_class = ApiPagination
    serializer_class = EntrySerializer

    @extend_schema(
        operation_id="customers_points_entries_list", tags=TAGS, summary="A customer's points entries",
        description="The ledger, newest first: earn, redeem, expire, adjust and reverse entries. The balance is their sum.",
        parameters=[CUSTOMER_ID], responses={200: EntrySerializer(many=True), **error_responses(401, 404)},
    )
    def get(self, request, pk: int):
        customer_in_scope(request.user, pk)
        page = self.paginate_queryset(loyalty_selectors.entries_for(request.user, pk))
        return self.get_paginated_response(EntrySerializer(page, many=True).data)


class RedeemView(ApiView):
    @extend_schema(
        operation_id="customers_points_redeem", tags=TAGS, summary="Redeem points at a counter",
        description="Spends points, first to expire first, in one transaction that holds the customer's account lock: "
                    "concurrent redemptions take turns and the balance never goes below zero. More than the balance gives "
                    "400 with the available points in `errors.points`. Send an `idempotency_key` to make a retry safe.",
        parameters=[CUSTOMER_ID], request=RedeemSerializer,
        responses={201: RedeemResultSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, pk: int):
        body = RedeemSerializer(data=request.data)
        code = request.data.get("unit") if isinstance(request.data, dict) else None
        if isinstance(code, str) and code:
            # The counter's hot path: customer and unit scope in one hand-written query.
            scope = loyalty_selectors.counter_scope(request.user, pk, code)
            if scope.customer is None:
                raise Http404
            body.is_valid(raise_exception=True)
            if scope.unit is None:
                raise exceptions.ValidationError({"unit": [_("There is no business unit “%(code)s”.") % {"code": code}]})
            if not scope.unit_allowed:
                raise exceptions.PermissionDenied(_("You cannot work with business unit “%(code)s”.") % {"code": code})
            customer, unit = scope.customer, scope.unit
        else:
            customer = customer_in_scope(request.user, pk)
            body.is_valid(raise_exception=True)
            unit = unit_in_scope(request.user, None)
        values = body.validated_data
        key = values.get("idempotency_key", "")
        entry = loyalty_services.redeem_points(
            actor=api_actor(request), customer=customer, points=values["points"], unit=unit,
            idempotency_key=f"api:{request.user.pk}:{key}"[:64] if key else "", note=values.get("note", ""))
        # The balance was counted under the account lock: exact at the moment of the redemption.
        return Response({"id": entry.pk, "kind": entry.kind, "points": entry.points, "at": serializers.DateTimeField().to_representation(entry.at),
                         "unit": unit.code if entry.unit_id == unit.pk else entry.unit.code, "order": None, "reason": entry.reason, "via": entry.via,
                         "by": request.user.get_username() if entry.created_by_id else "", "balance": entry.balance_after},
                        status=status.HTTP_201_CREATED)


class AdjustView(ApiView):
    @extend_schema(
        operation_id="customers_points_adjust", tags=TAGS, summary="Adjust points (managers and admins)",
        description="A manual correction with its reason. Staff get 403. Removing more than the balance gives 400.",
        parameters=[CUSTOMER_ID], request=AdjustSerializer,
        responses={201: RedeemResultSerializer, 403: OpenApiResponse(ErrorSerializer, description="Staff, or a unit outside your scope."),
                   **error_responses(400, 401, 404)},
    )
    def post(self, request, pk: int):
        customer = customer_in_scope(request.user, pk)
        if not loyalty_services.may_adjust(request.user):
            raise exceptions.PermissionDenied(_("Only a manager or an admin may adjust points."))
        body = AdjustSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        unit = unit_in_scope(request.user, values.get("unit"), required=False)
        entry = loyalty_services.adjust_points(actor=api_actor(request), customer=customer, points=values["points"],
                                               reason=values["reason"], unit=unit)
        entry.balance = loyalty_selectors.balance_of(entry.customer_id)
        return Response(RedeemResultSerializer(entry).data, status=status.HTTP_201_CREATED)


class ReferralView(ApiView):
    @extend_schema(
        operation_id="customers_referral_create", tags=TAGS, summary="Link a newcomer to the member who referred them",
        description="Both are rewarded when the newcomer's first qualifying purchase is recorded. Refused (400, under "
                    "`errors.code`): an unknown code, self-referral, a shared phone number or email, merged duplicates, "
                    "a loop of referrals, a customer who joined too long ago or has already bought.",
        parameters=[CUSTOMER_ID], request=ReferralInSerializer,
        responses={201: ReferralOutSerializer, **error_responses(400, 401, 404)},
    )
    def post(self, request, pk: int):
        customer = customer_in_scope(request.user, pk)
        body = ReferralInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        referral = loyalty_services.link_referral(actor=api_actor(request), customer=customer, code=body.validated_data["code"])
        return Response(ReferralOutSerializer(referral).data, status=status.HTTP_201_CREATED)


class CouponUseView(ApiView):
    @extend_schema(
        operation_id="customers_coupons_use", tags=TAGS, summary="Mark a coupon of the wallet used",
        description="Once only: a used, expired or void coupon gives 400; a coupon of another unit gives 400 under `unit`.",
        parameters=[CUSTOMER_ID, OpenApiParameter("coupon_id", int, OpenApiParameter.PATH, description="Coupon id.")],
        request=CouponUseSerializer, responses={200: CouponSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, pk: int, coupon_id: int):
        customer = customer_in_scope(request.user, pk)
        coupon = Coupon.objects.filter(pk=coupon_id, customer=customer).first()
        if coupon is None:
            raise Http404
        body = CouponUseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        unit = unit_in_scope(request.user, body.validated_data.get("unit"))
        used = loyalty_services.use_coupon(actor=api_actor(request), coupon=coupon, unit=unit,
                                           amount_krw=body.validated_data.get("amount_krw"))
        return Response(CouponSerializer(used).data)


class MemberLookupView(ApiView):
    @extend_schema(
        operation_id="loyalty_members_lookup", tags=TAGS, summary="Find a member by the number on their card",
        description="A member of another business unit of the group becomes known to your unit (`linked: true`, "
                    "audited): points are earned and spent anywhere in the group. An unknown number gives 404.",
        request=MemberLookupSerializer,
        responses={200: MemberLookupResultSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request):
        body = MemberLookupSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        customer = loyalty_selectors.find_member(values["member_number"])
        if customer is None:
            raise Http404
        linked = False
        if not customer_selectors.customers_for(request.user).filter(pk=customer.pk).exists():
            unit = unit_in_scope(request.user, values.get("unit"))
            customer_services.link_to_unit(actor=api_actor(request), customer=customer, unit=unit)
            linked = True
        return Response({"customer": customer.pk, "linked": linked, "points": points_payload(request, customer)})


class StampsView(ApiView):
    @extend_schema(
        operation_id="customers_stamps_retrieve", tags=TAGS, summary="A customer's stamp cards",
        description="The active stamp cards of your business units and any card the customer holds stamps on.",
        parameters=[CUSTOMER_ID], responses={200: StampCardStateSerializer(many=True), **error_responses(401, 404)},
    )
    def get(self, request, pk: int):
        customer = customer_in_scope(request.user, pk)
        units = list(units_for(request.user).values_list("pk", flat=True))
        return Response(StampCardStateSerializer(loyalty_stamps.card_states(customer.pk, unit_ids=units), many=True).data)

    @extend_schema(
        operation_id="customers_stamps_create", tags=TAGS, summary="Stamp the card at a counter (one tap)",
        description="Gives stamps on the card of your business unit; at the card's target the reward coupon goes into "
                    "the wallet (listed in `coupons`). Holds the customer's account lock: concurrent taps lose or double "
                    "no stamp. Send an `idempotency_key` to make a retry safe. A unit without a stamp card gives 400 "
                    "under `unit`.",
        parameters=[CUSTOMER_ID], request=StampInSerializer,
        responses={201: StampResultSerializer, 200: StampResultSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, pk: int):
        customer = customer_in_scope(request.user, pk)
        body = StampInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        unit = unit_in_scope(request.user, values.get("unit"))
        key = values.get("idempotency_key", "")
        result = loyalty_stamps.stamp(actor=api_actor(request), customer=customer, unit=unit, stamps=values["stamps"],
                                      idempotency_key=f"api:{request.user.pk}:{key}"[:64] if key else "",
                                      note=values.get("note", ""))
        state = next(s for s in loyalty_stamps.card_states(result.entry.customer_id, unit_ids=[unit.pk])
                     if s.card.pk == result.card.pk)
        coupons = Coupon.objects.filter(pk__in=result.coupon_ids).select_related("template").prefetch_related("template__units")
        return Response({"entry": result.entry.pk, "replayed": result.replayed,
                         "card": StampCardStateSerializer(state).data, "coupons": CouponSerializer(coupons, many=True).data},
                        status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED)


# --- coupons by code (a POS scanning the code a campaign sent) ---------------------------------------------------------

class CouponCodeSerializer(StrictSerializer):
    code = serializers.CharField(max_length=40, help_text="The coupon code (case, spaces and dashes ignored).")
    unit = serializers.SlugField(max_length=40, required=False, help_text="Where it is used; optional with one unit.")
    amount_krw = serializers.IntegerField(min_value=0, max_value=10_000_000_000, required=False,
                                         help_text="The purchase (KRW): checks the minimum spend; on redeem, records the discount.")


class CouponCheckSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   help_text="Why it cannot be used here now (empty when valid).")
    coupon = CouponSerializer()
    customer = serializers.IntegerField(help_text="customer id")
    customer_name = serializers.CharField(help_text="masked")


def coupon_by_code(request) -> tuple:
    """The coupon named by the body's code and the unit where it would be used. A code is a bearer credential: the
    coupon's customer need not be known to the unit yet (a group-wide coupon can be used at any unit of the group)."""
    body = CouponCodeSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    unit = unit_in_scope(request.user, body.validated_data.get("unit"))
    code = "".join(ch for ch in body.validated_data["code"].upper() if ch.isalnum())
    coupon = Coupon.objects.select_related("template", "customer").prefetch_related("template__units").filter(code=code).first()
    if coupon is None:
        raise Http404
    return coupon, unit, body.validated_data.get("amount_krw")


def coupon_check(coupon, unit, amount_krw=None) -> dict:
    from dangol.core.masking import mask_name

    problem = loyalty_services.coupon_problem(coupon, unit=unit, amount_krw=amount_krw) or {}
    return {"valid": not problem, "errors": problem, "coupon": CouponSerializer(coupon).data, "customer": coupon.customer_id,
            "customer_name": mask_name(coupon.customer.name)}


class CouponValidateView(ApiView):
    required_scope = "coupons:read"

    @extend_schema(
        operation_id="coupons_validate", tags=TAGS, summary="Check a coupon code before a sale",
        description="Answers whether the coupon can be used at the unit now, and why not (used, expired, void, another "
                    "unit). Nothing is written. An unknown code gives 404.",
        request=CouponCodeSerializer, responses={200: CouponCheckSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request):
        coupon, unit, amount_krw = coupon_by_code(request)
        return Response(coupon_check(coupon, unit, amount_krw))


class CouponRedeemView(ApiView):
    required_scope = "coupons:write"

    @extend_schema(
        operation_id="coupons_redeem", tags=TAGS, summary="Use a coupon by its code",
        description="Once only, under a row lock: a second use, an expired, void or other unit's coupon gives 400 and "
                    "changes nothing. The customer becomes known to the unit (as with a member card). Send an "
                    "`Idempotency-Key` header so that a retried request answers the first result.",
        request=CouponCodeSerializer, responses={200: CouponCheckSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request):
        coupon, unit, amount_krw = coupon_by_code(request)
        used = loyalty_services.use_coupon(actor=api_actor(request), coupon=coupon, unit=unit, amount_krw=amount_krw)
        customer_services.link_to_unit(actor=api_actor(request), customer=coupon.customer, unit=unit)
        return Response(coupon_check(used, unit))
