"""A small, explicit event hook for reactions across apps that must not import each other.

Apps subscribe in ``AppConfig.ready()``; services emit after their write, inside the same transaction,
so a failing handler rolls the whole write back. Handlers run synchronously and in subscription order.

Events:
- ``order_recorded(order)`` — emitted by ``sales.services.record_order`` (also for refunds).
- ``orders_imported(unit_id, order_ids)`` — emitted by the order import (``ingest.orders_import``) once per file,
  inside its transaction, with the ids of the orders it created (sales and refunds; flagged ones included, see
  ``Order.needs_review``). Handlers must be set-based: a file holds millions of lines.
- ``customers_merged(survivor, merged, merge, moved)`` — emitted by ``ingest.merge.merge_customers`` before it
  saves ``merge.moved``: move your own rows of ``merged`` to ``survivor`` and add their ids to ``moved``
  (``moved["points"] = [...]``, a dict to mutate), so that the undo can move exactly those back.
- ``customers_unmerged(survivor, merged, merge, moved)`` — emitted by ``ingest.merge.unmerge``: move the rows whose
  ids you put in ``moved`` back from ``survivor`` to ``merged``.
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
