from django.contrib.auth import views as auth_views
from django.urls import path

from . import urls_security  # noqa: I001  (security-api)
from . import (urls_analytics, urls_campaigns, urls_import, urls_loyalty, urls_messaging, urls_privacy, urls_review, urls_service,
               views)

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("customers/search/", views.customer_search, name="customer_search"),
    path("customers/new/", views.customer_create, name="customer_create"),
    path("customers/check-phone/", views.check_phone, name="check_phone"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer_detail"),
    path("customers/<int:customer_id>/edit/", views.customer_edit, name="customer_edit"),
    path("customers/<int:customer_id>/timeline/", views.customer_timeline, name="customer_timeline"),
    path("customers/<int:customer_id>/contacts/reveal/", views.customer_reveal_contacts, name="customer_reveal_contacts"),
    path("customers/<int:customer_id>/notes/", views.customer_add_note, name="customer_add_note"),
    path("customers/<int:customer_id>/preferences/", views.customer_add_preference, name="customer_add_preference"),
    path("customers/<int:customer_id>/orders/", views.customer_orders, name="customer_orders"),
    path("customers/<int:customer_id>/orders/new/", views.order_create, name="order_create"),
]
urlpatterns += urls_import.urlpatterns + urls_review.urlpatterns + urls_analytics.urlpatterns + urls_loyalty.urlpatterns
urlpatterns += urls_messaging.urlpatterns + urls_campaigns.urlpatterns + urls_service.urlpatterns + urls_privacy.urlpatterns
urlpatterns += urls_security.urlpatterns
from . import urls_partners  # noqa: E402 (partner data sharing)
urlpatterns += urls_partners.urlpatterns
from . import urls_gatherings  # noqa: E402 (events with check-in)
urlpatterns += urls_gatherings.urlpatterns
