"""Integration tokens: create (shown once), revoke, authenticate.

A token looks like ``dgl_<43 url-safe characters>``; only its SHA-256 is stored. Older per-user tokens (DRF's
``authtoken``, from ``dangol token create --user``) keep working: they act as their user with every scope.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.text import slugify
from django.utils.translation import gettext as _

from dangol.core import audit
from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit, Role, User
from dangol.core.services import apply_role

from .models import SCOPES, ApiToken

TOKEN_PREFIX = "dgl_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    key: str  # the only time the token is available in clear


def validate_scopes(scopes) -> list[str]:
    scopes = sorted({str(s).strip() for s in scopes or [] if str(s).strip()})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValidationError({"scopes": [_("Unknown scope: %(scope)s. Known: %(known)s.") % {
            "scope": ", ".join(unknown), "known": ", ".join(SCOPES)}]})
    if not scopes:
        raise ValidationError({"scopes": [_("Give at least one scope.")]})
    return scopes


@transaction.atomic
def create_token(*, actor: Actor, name: str, scopes, units: list[BusinessUnit] = (), role: str = Role.STAFF,
                 rate: str = "", expires_at=None) -> CreatedToken:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": [_("Give the integration a name.")]})
    if ApiToken.objects.filter(name=name).exists():
        raise ValidationError({"name": [_("There is already a token with this name.")]})
    if role not in Role.values:
        raise ValidationError({"role": [_("Unknown role.")]})
    scopes = validate_scopes(scopes)
    units = list(units)
    if role != Role.ADMIN and not units:
        raise ValidationError({"units": [_("Give the business units the integration works for.")]})
    if rate:
        from .throttling import parse_rate_or_error

        parse_rate_or_error(rate)
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    account = User(username=f"api-{slugify(name)[:100] or 'integration'}-{get_random_string(6).lower()}",
                   first_name=name[:150], role=role)
    account.set_unusable_password()
    account.save()
    account.units.set(units)
    apply_role(account)
    token = ApiToken.objects.create(name=name, prefix=key[:12], key_hash=hash_key(key), user=account, role=role,
                                    scopes=scopes, rate=rate, expires_at=expires_at,
                                    created_by=actor.user if actor.user and actor.user.pk else None)
    token.units.set(units)
    audit.record(actor=actor, action="api_token.create", obj=token, fields=["scopes", "units"])
    return CreatedToken(token=token, key=key)


@transaction.atomic
def revoke_token(*, actor: Actor, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        User.objects.filter(pk=token.user_id).update(is_active=False)
        audit.record(actor=actor, action="api_token.revoke", obj=token)
    return token


def token_for_key(key: str) -> ApiToken | None:
    """The live token with this key, or None (unknown, revoked, expired)."""
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_key(key)).first()
    if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at <= timezone.now()):
        return None
    now = timezone.now()
    # At most one write a minute per token: the counter's hot path should not update a row on every request.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
