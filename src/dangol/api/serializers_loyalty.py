"""Shapes of the loyalty endpoints. The rules (what may be redeemed, who may adjust) live in dangol.loyalty.services."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dangol.loyalty.models import Coupon, EntryKind, LedgerEntry

from .serializers import MAX_ID, StrictSerializer

MAX_POINTS = 1_000_000_000


class RedeemSerializer(StrictSerializer):
    points = serializers.IntegerField(min_value=1, max_value=MAX_POINTS, help_text="Points to spend (1 point = the program's value in KRW).")
    unit = serializers.SlugField(max_length=40, required=False, help_text="Code of your business unit; omit when you work at one.")
    idempotency_key = serializers.CharField(max_length=64, required=False, allow_blank=True,
                                            help_text="Your id of this request: sent again, it redeems once and returns the same entry.")
    note = serializers.CharField(max_length=300, required=False, allow_blank=True)


class AdjustSerializer(StrictSerializer):
    points = serializers.IntegerField(min_value=-MAX_POINTS, max_value=MAX_POINTS, help_text="Positive adds, negative removes.")
    reason = serializers.CharField(max_length=300, help_text="Why: kept with the entry and shown on the timeline.")
    unit = serializers.SlugField(max_length=40, required=False)


class ReferralInSerializer(StrictSerializer):
    code = serializers.CharField(max_length=20, help_text="The referrer's referral code.")


class CouponUseSerializer(StrictSerializer):
    unit = serializers.SlugField(max_length=40, required=False)
    amount_krw = serializers.IntegerField(min_value=0, max_value=10_000_000_000, required=False,
                                         help_text="The purchase it is used on (KRW): checks the minimum spend and records the discount.")


class MemberLookupSerializer(StrictSerializer):
    member_number = serializers.CharField(max_length=40, help_text="The 12 digits of the member card (spaces and dashes ignored).")
    unit = serializers.SlugField(max_length=40, required=False,
                                 help_text="Your business unit the member becomes known to, when they are a member elsewhere in the group.")


@extend_schema_field({"type": "string", "example": EntryKind.EARN.value,
                      "description": "One of: " + ", ".join(EntryKind.values) + " (reverse: a refund taking back its sale's points)."})
class EntryKindField(serializers.CharField):
    """Documented as text with its values: an enum component named after the field would clash with the orders'
    ``kind`` (the project's ENUM_NAME_OVERRIDES could name it instead)."""


class EntrySerializer(serializers.ModelSerializer):
    kind = EntryKindField(read_only=True)
    unit = serializers.SlugRelatedField(slug_field="code", read_only=True)
    by = serializers.SerializerMethodField()

    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "points", "at", "unit", "order", "reason", "via", "by"]
        read_only_fields = fields

    def get_by(self, obj) -> str:
        return obj.created_by.get_username() if obj.created_by_id and obj.created_by else ""


class RedeemResultSerializer(EntrySerializer):
    balance = serializers.IntegerField(help_text="The balance after this entry.")

    class Meta(EntrySerializer.Meta):
        fields = [*EntrySerializer.Meta.fields, "balance"]
        read_only_fields = fields


class TierOutSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    benefits = serializers.CharField()


class CouponSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="template.name", read_only=True)
    kind = serializers.CharField(source="template.kind", read_only=True)
    value = serializers.IntegerField(source="template.value", read_only=True)
    min_spend_krw = serializers.IntegerField(source="template.min_spend_krw", read_only=True)
    usable_at = serializers.SerializerMethodField(help_text="Codes of the business units where the coupon is accepted; "
                                                            "empty: at every unit.")

    class Meta:
        model = Coupon
        fields = ["id", "code", "name", "kind", "value", "min_spend_krw", "usable_at", "status", "source", "issued_at",
                  "expires_at", "used_at", "discount_krw"]
        read_only_fields = fields

    def get_usable_at(self, obj) -> list[str]:
        return sorted(u.code for u in obj.template.units.all())


class PointsSerializer(serializers.Serializer):
    """A customer's membership: what the counter needs to earn, redeem and use coupons."""

    customer = serializers.IntegerField()
    member_number = serializers.CharField()
    balance = serializers.IntegerField(help_text="Points that can be spent now.")
    points_owed = serializers.IntegerField(help_text="Points of refunded purchases that had been spent; paid by the next earnings.")
    expiring_points = serializers.IntegerField(help_text="Points that expire within the program's notice window.")
    first_expiry = serializers.DateTimeField(allow_null=True)
    tier = TierOutSerializer(allow_null=True)
    tier_since = serializers.DateTimeField(allow_null=True)
    downgrade_at = serializers.DateTimeField(allow_null=True, help_text="End of the grace period when below the tier's threshold.")
    next_tier = TierOutSerializer(allow_null=True)
    to_next_tier = serializers.IntegerField(help_text="KRW or points (see tier_basis) still missing for the next tier.")
    tier_basis = serializers.ChoiceField(choices=[("spend", "spend"), ("points", "points")])
    referral_code = serializers.CharField()
    card_url = serializers.CharField(help_text="The signed member card link (no login; expires).")
    coupons = CouponSerializer(many=True)
    recent_entries = EntrySerializer(many=True)


class ReferralOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    referrer = serializers.IntegerField(source="referrer_id")
    referred = serializers.IntegerField(source="referred_id")
    status = serializers.CharField()
    linked_at = serializers.DateTimeField()


class MemberLookupResultSerializer(serializers.Serializer):
    customer = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    linked = serializers.BooleanField(help_text=str(_("True when the member became known to your unit by this lookup.")))
    points = PointsSerializer()


class StampInSerializer(StrictSerializer):
    stamps = serializers.IntegerField(min_value=1, max_value=100, required=False, default=1,
                                      help_text="Stamps to give (1 by default; at most the card's limit per tap).")
    unit = serializers.SlugField(max_length=40, required=False, help_text="Code of your business unit; omit when you work at one.")
    idempotency_key = serializers.CharField(max_length=64, required=False, allow_blank=True,
                                            help_text="Your id of this tap: sent again, it stamps once and returns the same result.")
    note = serializers.CharField(max_length=300, required=False, allow_blank=True)


class StampCardStateSerializer(serializers.Serializer):
    card = serializers.IntegerField(source="card.pk")
    name = serializers.CharField(source="card.name")
    unit = serializers.CharField(source="card.unit.code")
    stamps = serializers.IntegerField(help_text="Stamps on the card now.")
    target = serializers.IntegerField(help_text="Stamps that make a reward.")
    to_go = serializers.IntegerField()
    reward = serializers.CharField(source="card.reward.name")
    owed = serializers.IntegerField(help_text="Stamps of refunded purchases that had already been rewarded; paid by the next stamps.")
    next_expiry = serializers.DateTimeField(allow_null=True)
    expiring = serializers.IntegerField(help_text="Stamps that expire at next_expiry.")
    rewards = serializers.IntegerField(help_text="Rewards issued from this card so far.")


class StampResultSerializer(serializers.Serializer):
    entry = serializers.IntegerField(help_text="The stamp entry (the first one when the tap was sent again).")
    replayed = serializers.BooleanField(help_text="True when this idempotency_key was used before: nothing new was written.")
    card = StampCardStateSerializer()
    coupons = CouponSerializer(many=True, help_text="Reward coupons this tap put into the wallet.")
