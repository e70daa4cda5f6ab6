"""The import wizard: upload, preview, column mapping, dry run, result and error report."""
from django.urls import path

from . import views_import

urlpatterns = [
    path("imports/", views_import.import_start, name="import_start"),
    path("imports/<int:job_id>/map/", views_import.import_map, name="import_map"),
    path("imports/<int:job_id>/", views_import.import_result, name="import_result"),
    path("imports/<int:job_id>/again/", views_import.import_again, name="import_again"),
    path("imports/<int:job_id>/errors.csv", views_import.import_errors, name="import_errors"),
]
