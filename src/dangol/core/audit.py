"""The audit trail of personal data: one function everything calls."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .models import AuditEvent, User


@dataclass(frozen=True)
class Actor:
    """Who is acting and from where; built once at the edge (view, API, CLI) and passed to services."""

    user: User | None
    ip: str | None = None
    via: str = "web"

    @classmethod
    def from_request(cls, request, via: str = "web") -> "Actor":
        return cls(user=request.user if request.user.is_authenticated else None, ip=client_ip(request), via=via)

    @classmethod
    def system(cls, via: str = "cli") -> "Actor":
        return cls(user=None, ip=None, via=via)


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or behind DANGOL_TRUSTED_PROXY_COUNT proxies the address the outermost
    trusted proxy saw (X-Forwarded-For entries further left can be forged by the client)."""
    from django.conf import settings

    count = settings.TRUSTED_PROXY_COUNT
    if count:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= count:
            return hops[-count]
    return request.META.get("REMOTE_ADDR") or None


def record(*, actor: Actor, action: str, obj, fields: Iterable[str] = ()) -> AuditEvent:
    user = actor.user
    return AuditEvent.objects.create(
        actor=user,
        actor_label=user.get_username() if user else f"system:{actor.via}",
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        fields=sorted(set(fields)),
        ip=actor.ip,
        via=actor.via,
    )
