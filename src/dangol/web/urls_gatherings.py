"""Pages of events with check-in, registered in web/urls.py."""
from django.urls import path

from . import views_gatherings as views

urlpatterns: list = [
    path("events/", views.events, name="events"),
    path("events/<int:event_id>/", views.event_detail, name="event_detail"),
    path("events/<int:event_id>/invite/", views.event_invite, name="event_invite"),
    path("events/<int:event_id>/check-in/", views.event_check_in, name="event_check_in"),
    path("events/<int:event_id>/report/", views.event_report, name="event_report"),
    path("events/<int:event_id>/survey/", views.event_survey, name="event_survey"),
    path("e/<str:token>/", views.event_rsvp, name="event_rsvp"),
]
