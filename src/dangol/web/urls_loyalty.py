"""Pages of the loyalty app, registered in web/urls.py: the points panel's actions, the member number lookup, the
points history, and the public member card and referral pages."""
from django.urls import path

from . import views_loyalty as views

urlpatterns: list = [
    path("customers/<int:customer_id>/points/", views.loyalty_history, name="loyalty_history"),
    path("customers/<int:customer_id>/points/panel/", views.loyalty_panel, name="loyalty_panel"),
    path("customers/<int:customer_id>/points/redeem/", views.loyalty_redeem, name="loyalty_redeem"),
    path("customers/<int:customer_id>/stamps/<int:card_id>/", views.loyalty_stamp, name="loyalty_stamp"),
    path("customers/<int:customer_id>/points/adjust/", views.loyalty_adjust, name="loyalty_adjust"),
    path("customers/<int:customer_id>/referral/", views.loyalty_link_referral, name="loyalty_link_referral"),
    path("customers/<int:customer_id>/coupons/<int:coupon_id>/use/", views.loyalty_use_coupon, name="loyalty_use_coupon"),
    path("members/", views.member_lookup, name="loyalty_member_lookup"),
    path("m/<str:token>/", views.member_card_page, name="loyalty_card"),
    path("r/<str:code>/", views.referral_landing, name="loyalty_referral_landing"),
]
