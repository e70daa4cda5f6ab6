"""Thin public views of messaging: no login, but every report must carry the HMAC of its body, and an unsubscribe
token is signed. They parse, check, call a messaging service, answer."""
from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from dangol.core.audit import client_ip
from dangol.messaging import reports, services
from dangol.messaging.providers import REGISTRY, get_provider

SIGNATURE_HEADER = "HTTP_X_DANGOL_SIGNATURE"


def sign(body: bytes, secret: str | None = None) -> str:
    """The signature a report must carry in X-Dangol-Signature: "sha256=" + hex HMAC-SHA256 of the raw body."""
    secret = settings.MESSAGING_WEBHOOK_SECRET if secret is None else secret
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@csrf_exempt
@require_POST
def delivery_report(request, provider: str):
    if provider not in REGISTRY:
        return JsonResponse({"detail": "unknown provider"}, status=404)
    if not settings.MESSAGING_WEBHOOK_SECRET:
        return JsonResponse({"detail": "webhooks are not configured"}, status=503)
    given = request.META.get(SIGNATURE_HEADER, "")
    if not hmac.compare_digest(given, sign(request.body)):
        return JsonResponse({"detail": "bad signature"}, status=403)
    try:
        updates = get_provider(provider).parse_report(request)
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"detail": "malformed report"}, status=400)
    return JsonResponse(reports.apply_reports(provider=provider, updates=updates))


@csrf_exempt
@require_http_methods(["GET", "POST"])
def one_click_unsubscribe(request, token: str):
    """RFC 8058: a POST with body "List-Unsubscribe=One-Click" unsubscribes at once (mail clients send it). A GET never
    changes anything (link scanners follow links): it points to the opt-out page."""
    if request.method == "GET":
        return HttpResponse("POST List-Unsubscribe=One-Click to this address to unsubscribe.", content_type="text/plain; charset=utf-8")
    try:
        result = services.unsubscribe(token, ip=client_ip(request))
    except ValidationError:
        return JsonResponse({"detail": "invalid link"}, status=404)
    return JsonResponse({"unsubscribed": True, "channel": result["channel"]})
