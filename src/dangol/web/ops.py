"""Operations endpoints: liveness, readiness and Prometheus metrics. No session, no personal data."""
import hmac
import os

from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from dangol.core.metrics import broker_ok, database_ok, render_metrics


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    db, db_detail = database_ok()
    broker, broker_detail = broker_ok()
    ready = db and broker
    return JsonResponse({"status": "ok" if ready else "unavailable", "database": db_detail, "broker": broker_detail},
                        status=200 if ready else 503)


@never_cache
@require_GET
def metrics(request):
    token = os.environ.get("DANGOL_METRICS_TOKEN")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given, token):
            return HttpResponse(status=401)
    return HttpResponse(render_metrics(), content_type="text/plain; version=0.0.4; charset=utf-8")
