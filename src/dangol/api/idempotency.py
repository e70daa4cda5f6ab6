"""``Idempotency-Key`` on POST: a retry of the same request gets the first answer again instead of a second write.

- The key (1–255 printable characters) is stored per token (per account for sessions) with a SHA-256 of the method,
  path and body, and the response once the request has been answered.
- Same key, same request → the stored response (status and body), with ``Idempotent-Replayed: true``.
- Same key, different method, path or body → 422 ``idempotency_key_reused``.
- Same key while the first request is still running → 409 ``idempotency_key_in_use`` (retry later).
- Server errors (5xx) are not stored: the key may be retried. Records are kept ``DANGOL_IDEMPOTENCY_HOURS`` (24).
"""
from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import exceptions, status

from .errors import Conflict
from .models import ApiToken, IdempotencyRecord

HEADER = "Idempotency-Key"
META_KEY = "HTTP_IDEMPOTENCY_KEY"


class KeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was used for a different request."
    default_code = "idempotency_key_reused"


def owner_of(request) -> str:
    token = request.auth
    if isinstance(token, ApiToken):
        return f"token:{token.pk}"
    if token is not None:
        return f"legacy:{request.user.pk}"
    return f"session:{request.user.pk}"


def fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b"\n" + request.get_full_path().encode() + b"\n")
    digest.update(request.body_for_idempotency)
    return digest.hexdigest()


def key_of(request) -> str | None:
    key = request.META.get(META_KEY)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 255 or not key.isprintable():
        raise exceptions.ValidationError({HEADER: [_("The Idempotency-Key must be 1 to 255 printable characters.")]})
    return key


def expired_before() -> dt.datetime:
    return timezone.now() - dt.timedelta(hours=getattr(settings, "DANGOL_IDEMPOTENCY_HOURS", 24))


def claim(request, key: str) -> tuple[IdempotencyRecord, IdempotencyRecord | None]:
    """(record, replay): ``replay`` is the finished record to answer with; otherwise ``record`` is newly claimed."""
    owner, print_ = owner_of(request), fingerprint(request)
    IdempotencyRecord.objects.filter(owner=owner, key=key, created_at__lt=expired_before()).delete()
    try:
        # Committed at once, outside the request's own transaction: a concurrent retry sees the claim.
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(owner=owner, key=key, fingerprint=print_)
        return record, None
    except IntegrityError:
        existing = IdempotencyRecord.objects.filter(owner=owner, key=key).first()
        if existing is None:  # removed meanwhile (expired, or the first request failed): try once more
            with transaction.atomic():
                return IdempotencyRecord.objects.create(owner=owner, key=key, fingerprint=print_), None
    if existing.fingerprint != print_:
        raise KeyReused(_("This Idempotency-Key was used for a different request."))
    if existing.status_code is None:
        raise Conflict(_("A request with this Idempotency-Key is still being processed. Retry in a moment."),
                       code="idempotency_key_in_use")
    return existing, existing


def store(record: IdempotencyRecord, response) -> None:
    if response.status_code >= 500 or not hasattr(response, "data"):
        record.delete()  # not answered: let the client retry with the same key
        return
    record.status_code = response.status_code
    record.response_body = storable(response.data)
    record.save(update_fields=["status_code", "response_body"])


def storable(value):
    """The response as PostgreSQL's jsonb can keep it: it refuses NUL characters (an error answer may quote a bad
    field name that holds one), so they are stored as U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {storable(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(v) for v in value]
    return value


def release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, status_code__isnull=True).delete()


def prune() -> int:
    return IdempotencyRecord.objects.filter(created_at__lt=expired_before()).delete()[0]
