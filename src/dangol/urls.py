from django.contrib import admin
from django.urls import include, path

from dangol.web import ops

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("dangol.api.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("dangol.web.urls")),
]
