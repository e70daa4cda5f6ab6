"""Pagination of every list endpoint: limit/offset (with a total count) or a cursor (stable while rows are added,
no count).

- ``?limit=50&offset=100`` — the page and ``count``, ``next``, ``previous`` links (compatible with earlier clients).
- ``?cursor=`` (empty for the first page) and then ``?cursor=<next_cursor>`` — keyset pagination over the list's
  ordering (e.g. newest first, then id): a row added or removed meanwhile neither repeats nor skips one. Every page
  also carries ``next_cursor`` (null on the last page), so a client can switch from offset to cursor at any time.

A cursor is opaque (base64url of the ordering values of the last row); a malformed one gives 400.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from functools import reduce
from operator import or_

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param


def _encode(values: list) -> str:
    def plain(value):
        if isinstance(value, (dt.datetime, dt.date)):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        return value

    raw = json.dumps([plain(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, count: int) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != count or any(isinstance(v, (list, dict)) for v in values):
        raise exceptions.ValidationError({"cursor": [_("This cursor is not valid: start again with an empty cursor.")]})
    return values


class ApiPagination(LimitOffsetPagination):
    max_limit = 200
    cursor_query_param = "cursor"

    # --- ordering of the queryset, made unique by the primary key
    @staticmethod
    def _ordering(queryset: QuerySet) -> list[str] | None:
        ordering = list(queryset.query.order_by) or list(queryset.model._meta.ordering or [])
        if not all(isinstance(o, str) for o in ordering):
            return None
        names = [o.lstrip("-") for o in ordering]
        if "pk" not in names and "id" not in names:
            ordering.append("-id" if ordering and ordering[0].startswith("-") else "id")
        return ["id" if o == "pk" else "-id" if o == "-pk" else o for o in ordering]

    @staticmethod
    def _value(obj, name: str):
        for part in name.split("__"):
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return getattr(obj, "pk", obj) if hasattr(obj, "_meta") else obj

    def _after(self, queryset: QuerySet, ordering: list[str], values: list) -> QuerySet:
        """Rows strictly after ``values`` in ``ordering`` (lexicographic: (a < x) or (a = x and b < y) …)."""
        model = queryset.model
        parsed = []
        for name, value in zip(ordering, values):
            field_name = name.lstrip("-")
            try:
                field = model._meta.get_field(field_name) if "__" not in field_name else None
                parsed.append(field.to_python(value) if field is not None and value is not None else value)
            except Exception:  # noqa: BLE001 - any unparsable value is a bad cursor
                raise exceptions.ValidationError({"cursor": [_("This cursor is not valid: start again with an empty cursor.")]})
        conditions = []
        for i, name in enumerate(ordering):
            if parsed[i] is None:
                continue  # NULLs sort apart; a cursor holding one only uses the other columns
            equal = {o.lstrip("-"): parsed[j] for j, o in enumerate(ordering[:i]) if parsed[j] is not None}
            op = "lt" if name.startswith("-") else "gt"
            conditions.append(Q(**equal, **{f"{name.lstrip('-')}__{op}": parsed[i]}))
        return queryset.filter(reduce(or_, conditions)) if conditions else queryset.none()

    # --- DRF interface
    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.ordering = self._ordering(queryset) if isinstance(queryset, QuerySet) else None
        self.cursor_mode = self.cursor_query_param in request.query_params
        self.next_cursor = None
        if not self.cursor_mode:
            page = super().paginate_queryset(queryset, request, view)
            self._set_next_cursor(page, has_more=self.offset + self.limit < self.count)
            return page
        if self.ordering is None:
            raise exceptions.ValidationError({"cursor": [_("This list cannot be paged with a cursor: use limit and offset.")]})
        self.limit = self.get_limit(request)
        queryset = queryset.order_by(*self.ordering)
        cursor = request.query_params.get(self.cursor_query_param, "")
        if cursor:
            queryset = self._after(queryset, self.ordering, _decode(cursor, len(self.ordering)))
        rows = list(queryset[: self.limit + 1])
        page = rows[: self.limit]
        self._set_next_cursor(page, has_more=len(rows) > self.limit)
        return page

    def _set_next_cursor(self, page, *, has_more: bool) -> None:
        if page and has_more and self.ordering is not None and not isinstance(page[0], dict):
            self.next_cursor = _encode([self._value(page[-1], name.lstrip("-")) for name in self.ordering])

    def get_paginated_response(self, data):
        if not self.cursor_mode:
            response = super().get_paginated_response(data)
            response.data["next_cursor"] = self.next_cursor
            return response
        url = self.request.build_absolute_uri()
        next_url = replace_query_param(remove_query_param(url, "offset"), self.cursor_query_param, self.next_cursor) \
            if self.next_cursor else None
        return Response({"next": next_url, "previous": None, "next_cursor": self.next_cursor, "results": data})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "count": {"type": "integer", "example": 123, "description": "Total rows (limit/offset paging only)."},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "next_cursor": {"type": "string", "nullable": True,
                                "description": "Send as `cursor` for the rows after this page; null on the last page."},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return super().get_schema_operation_parameters(view) + [{
            "name": self.cursor_query_param, "required": False, "in": "query",
            "description": "Cursor paging: empty for the first page, then the previous page's `next_cursor`.",
            "schema": {"type": "string"},
        }]
