"""API endpoints of the loyalty app (points, redemption, coupons), mounted under /api/v1/."""
from django.urls import path

from . import views_loyalty as views

urlpatterns: list = [
    path("customers/<int:pk>/points", views.PointsView.as_view(), name="customer_points"),
    path("customers/<int:pk>/points/entries", views.EntriesView.as_view(), name="customer_points_entries"),
    path("customers/<int:pk>/points/redeem", views.RedeemView.as_view(), name="customer_points_redeem"),
    path("customers/<int:pk>/points/adjust", views.AdjustView.as_view(), name="customer_points_adjust"),
    path("customers/<int:pk>/referral", views.ReferralView.as_view(), name="customer_referral"),
    path("customers/<int:pk>/coupons/<int:coupon_id>/use", views.CouponUseView.as_view(), name="customer_coupon_use"),
    path("customers/<int:pk>/stamps", views.StampsView.as_view(), name="customer_stamps"),
    path("loyalty/members/lookup", views.MemberLookupView.as_view(), name="loyalty_member_lookup"),
    path("coupons/validate", views.CouponValidateView.as_view(), name="coupons_validate"),
    path("coupons/redeem", views.CouponRedeemView.as_view(), name="coupons_redeem"),
]
