"""The program's configuration in the admin (earn rules, category multipliers, promotions, tiers, coupons), and
read-only views of the ledger and the wallets: entries are never edited, only added by the services."""
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import (
    Account,
    CategoryMultiplier,
    Coupon,
    CouponTemplate,
    EarnRule,
    LedgerEntry,
    Program,
    Promotion,
    Referral,
    StampCard,
    StampEntry,
    Tier,
    TierChange,
)


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    list_display = ["name", "default_rate_bp", "validity_months", "tier_basis", "tier_period_days", "tier_grace_days"]
    fieldsets = [
        (None, {"fields": ["name", "default_rate_bp", "point_value_krw", "min_redeem_points"]}),
        ("Expiry", {"fields": ["validity_months", "expiring_soon_days"]}),
        ("Tiers", {"fields": ["tier_basis", "tier_period_days", "tier_grace_days"]}),
        ("Referrals", {"fields": ["referral_referrer_points", "referral_newcomer_points", "referral_min_purchase_krw",
                                  "referral_join_days", "advocate_referrals"]}),
        ("Member card", {"fields": ["card_link_days"]}),
    ]

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not Program.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EarnRule)
class EarnRuleAdmin(admin.ModelAdmin):
    list_display = ["unit", "rate_bp", "is_active"]
    list_editable = ["rate_bp", "is_active"]


@admin.register(CategoryMultiplier)
class CategoryMultiplierAdmin(admin.ModelAdmin):
    list_display = ["category", "multiplier_pct"]
    list_select_related = ["category"]


@admin.register(Promotion)
class PromotionAdmin(admin.ModelAdmin):
    list_display = ["name", "unit", "category", "multiplier_pct", "starts_at", "ends_at", "is_active"]
    list_filter = ["is_active", "unit"]


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ["rank", "name", "code", "threshold", "earn_multiplier_pct", "upgrade_coupon", "is_active"]
    ordering = ["rank"]


@admin.register(CouponTemplate)
class CouponTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "value", "min_spend_krw", "valid_days", "usable_at", "is_active"]
    filter_horizontal = ["units"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("units")

    @admin.display(description=_("usable at"))
    def usable_at(self, obj):
        return obj.units_label or _("every business unit")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "customer_id", "kind", "points", "unit", "order_id", "via", "created_by", "approved_by"]
    list_filter = ["kind", "via", "unit"]
    search_fields = ["=customer__id", "=order__id"]
    list_select_related = ["unit", "created_by", "approved_by"]
    show_full_result_count = False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["member_number", "customer_id", "tier", "tier_since", "downgrade_at", "points_owed"]
    list_filter = ["tier"]
    search_fields = ["=member_number", "=referral_code", "=customer__id"]
    show_full_result_count = False


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = ["code", "template", "customer_id", "status", "source", "issued_at", "expires_at", "used_at"]
    list_filter = ["status", "source", "template"]
    search_fields = ["=code", "=customer__id"]
    show_full_result_count = False


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = ["linked_at", "referrer_id", "referred_id", "code", "status", "rewarded_at", "refusal"]
    list_filter = ["status"]


@admin.register(TierChange)
class TierChangeAdmin(ReadOnlyAdmin):
    list_display = ["at", "customer_id", "from_tier", "to_tier", "cause", "qualifying_value"]
    list_filter = ["cause", "to_tier"]


@admin.register(StampCard)
class StampCardAdmin(admin.ModelAdmin):
    list_display = ["name", "unit", "basis", "stamps", "min_amount_krw", "target", "reward", "validity_days", "is_active"]
    list_filter = ["is_active", "unit"]
    filter_horizontal = ["products", "categories"]


@admin.register(StampEntry)
class StampEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "customer_id", "card", "kind", "stamps", "unit", "order_id", "via", "created_by"]
    list_filter = ["kind", "via", "card"]
    search_fields = ["=customer__id", "=order__id"]
    show_full_result_count = False
