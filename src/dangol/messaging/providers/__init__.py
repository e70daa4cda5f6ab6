"""Delivery providers behind one small interface, as a registry (one module per provider).

A provider has ``name``, ``honours_idempotency_key`` and two methods:
- ``send_batch(messages) -> list[Result]``: one Result per message, in any order. Raise ``ProviderUnavailable`` when
  nothing can have been accepted (connection refused: safe to retry); any other exception means "maybe accepted".
- ``parse_report(request) -> list[ReportUpdate]``: the delivery reports of a (signature-checked) webhook request.

Which guarantee each gets is written in /tmp/dangol-ctx/readme-messaging-core.md (and delivery.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import datetime as dt

from django.utils.module_loading import import_string

REGISTRY = {
    "file": "dangol.messaging.providers.filesink.FileSinkProvider",
    "nhn": "dangol.messaging.providers.nhn.NhnProvider",
    "smtp": "dangol.messaging.providers.smtp.SmtpProvider",
}


class ProviderUnavailable(Exception):
    """Nothing was accepted (e.g. connection refused): the batch goes back to the queue and is retried."""


@dataclass
class Result:
    message_id: int
    outcome: str  # sent | failed | retry
    provider_message_id: str = ""
    detail: str = ""


@dataclass
class ReportUpdate:
    status: str  # delivered | failed | opened | clicked
    provider_message_id: str = ""
    idempotency_key: str = ""
    reason: str = ""
    at: dt.datetime | None = None
    report_id: str = ""
    extra: dict = field(default_factory=dict)


_instances: dict[str, object] = {}


def get_provider(name: str):
    if name not in REGISTRY:
        raise KeyError(f"unknown messaging provider {name!r}; known: {', '.join(REGISTRY)}")
    if name not in _instances:
        _instances[name] = import_string(REGISTRY[name])()
    return _instances[name]


def reset() -> None:
    """Forget provider instances (tests change settings)."""
    _instances.clear()


def parse_json_report(request) -> list[ReportUpdate]:
    """The report format of the file sink and the local test provider: {"reports": [{"id", "message_id"|"key",
    "status", "reason", "at"}]}."""
    import json

    from django.utils.dateparse import parse_datetime

    data = json.loads(request.body or b"{}")
    updates = []
    for item in data.get("reports", []):
        at = parse_datetime(item["at"]) if item.get("at") else None
        updates.append(ReportUpdate(status=str(item.get("status", "")), provider_message_id=str(item.get("message_id", "")),
                                    idempotency_key=str(item.get("key", "")), reason=str(item.get("reason", ""))[:300], at=at,
                                    report_id=str(item.get("id", ""))))
    return updates
