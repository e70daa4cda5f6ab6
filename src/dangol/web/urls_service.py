"""Pages of the service app, registered in web/urls.py: cases, the customer's knowledge, the KPIs, and the two public
pages (the request form and the survey)."""
from django.urls import path

from . import views_service as views

urlpatterns: list = [
    path("customers/<int:customer_id>/cases/new/", views.case_create, name="service_case_create"),
    path("customers/<int:customer_id>/traits/", views.trait_add, name="service_trait_add"),
    path("customers/<int:customer_id>/traits/<int:trait_id>/remove/", views.trait_remove, name="service_trait_remove"),
    path("cases/", views.case_queue, name="service_cases"),
    path("cases/<int:case_id>/", views.case_detail, name="service_case"),
    path("cases/<int:case_id>/status/", views.case_status, name="service_case_status"),
    path("cases/<int:case_id>/entries/", views.case_entry, name="service_case_entry"),
    path("cases/<int:case_id>/assign/", views.case_assign, name="service_case_assign"),
    path("cases/<int:case_id>/priority/", views.case_priority, name="service_case_priority"),
    path("cases/<int:case_id>/escalate/", views.case_escalate, name="service_case_escalate"),
    path("cases/<int:case_id>/goodwill/", views.case_goodwill, name="service_case_goodwill"),
    path("service/", views.service_kpis, name="service_kpis"),
    path("help/", views.public_request, name="service_public_request"),
    path("s/<str:token>/", views.survey_answer, name="service_survey_answer"),
]
