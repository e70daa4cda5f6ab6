"""A small, explicit event hook for reactions across apps that must not import each other.

Apps subscribe in ``AppConfig.ready()``; services emit after their write, inside the same transaction,
so a failing handler rolls the whole write back. Handlers run synchronously and in subscription order.

Events:
- ``order_recorded(order)`` — emitted by ``sales.services.record_order`` (also for refunds).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

_handlers: dict[str, list[Callable]] = defaultdict(list)


def subscribe(event: str, handler: Callable) -> None:
    if handler not in _handlers[event]:
        _handlers[event].append(handler)


def emit(event: str, **payload) -> None:
    for handler in list(_handlers[event]):
        handler(**payload)
