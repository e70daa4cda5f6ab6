"""Reads of the privacy app, scoped like the customers they concern."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from dangol.core.models import AuditEvent, User
from dangol.customers.selectors import customers_for

from .models import OPEN_STATUSES, DataSubjectRequest


def requests_for(user: User) -> QuerySet[DataSubjectRequest]:
    """Requests of the customers the user may see."""
    return DataSubjectRequest.objects.filter(customer__in=customers_for(user)).select_related("customer", "handled_by", "unit")


@dataclass
class RequestBoard:
    overdue: list[DataSubjectRequest]
    near_due: list[DataSubjectRequest]
    open: list[DataSubjectRequest]
    closed: list[DataSubjectRequest]


def request_board(user: User, *, now: dt.datetime | None = None, closed_limit: int = 50) -> RequestBoard:
    """Open requests split by their deadline (overdue, due within DANGOL_DSR_NEAR_DUE_DAYS, the rest), and the latest
    closed ones."""
    now = now or timezone.now()
    near = now + dt.timedelta(days=settings.DANGOL_DSR_NEAR_DUE_DAYS)
    scope = requests_for(user)
    open_requests = list(scope.filter(status__in=OPEN_STATUSES).order_by("due_at", "id"))
    return RequestBoard(
        overdue=[r for r in open_requests if r.due_at < now],
        near_due=[r for r in open_requests if now <= r.due_at < near],
        open=[r for r in open_requests if r.due_at >= near],
        closed=list(scope.exclude(status__in=OPEN_STATUSES).order_by("-completed_at", "-id")[:closed_limit]),
    )


def month_bounds(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The first instant of the month and of the next, in Seoul time."""
    tz = timezone.get_current_timezone()
    start = dt.datetime(month.year, month.month, 1, tzinfo=tz)
    following = dt.datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=tz)
    return start, following


def access_log(*, month: dt.date, action: str = "", actor: str = "") -> QuerySet[AuditEvent]:
    """Every audit event of a month (who, when, from where, whose data, what, why), oldest first for reading."""
    start, end = month_bounds(month)
    qs = AuditEvent.objects.filter(at__gte=start, at__lt=end).select_related("access_reason").order_by("at", "id")
    if action:
        qs = qs.filter(action__startswith=action)
    if actor:
        qs = qs.filter(actor_label=actor)
    return qs



REVIEW_ACTION = "privacy.access_log_review"


def access_log_reviews(*, month: dt.date) -> list[AuditEvent]:
    """Who marked this month's access log as reviewed, and when (the monthly review of 안전성 확보조치 기준 §8 ②).
    A handful of rows a month: filtered here rather than with a JSON lookup SQLite lacks."""
    tag = f"month.{month:%Y-%m}"
    return [e for e in AuditEvent.objects.filter(action=REVIEW_ACTION).order_by("at") if tag in (e.fields or [])]
