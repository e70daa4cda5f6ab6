"""Pages of partner data sharing, registered in web/urls.py."""
from django.urls import path

from . import views_partners as views

urlpatterns: list = [
    path("partners/", views.partners_home, name="partners_home"),
    path("partners/agreements/<int:agreement_id>/export/", views.partner_export, name="partners_export"),
    path("partners/agreements/<int:agreement_id>/import/", views.partner_import, name="partners_import"),
    path("partners/d/<str:token>/", views.partner_download, name="partners_download"),
    path("customers/<int:customer_id>/partner-consents/<int:agreement_id>/", views.partner_consent, name="partners_consent"),
]
