"""Reads of messaging, with the unit scope applied (for the message log and the 360° page)."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import Decision, Message


def messages_for(user) -> QuerySet:
    """Messages the user may see: admins all; others those of their units' customers or sent from their units."""
    from dangol.core.selectors import units_for
    from dangol.customers.selectors import customers_for

    qs = Message.objects.select_related("customer", "unit")
    if getattr(user, "role", "") == "admin" or user.is_superuser:
        return qs
    units = units_for(user)
    return qs.filter(Q(unit__in=units) | Q(customer__in=customers_for(user)))


def messages_of_customer(customer) -> QuerySet:
    return Message.objects.filter(customer=customer).order_by("-created_at", "-id")


def decisions_of(message: Message) -> QuerySet:
    return Decision.objects.filter(message=message).order_by("at", "id")


def status_counts(messages: QuerySet) -> dict:
    from django.db.models import Count

    return dict(messages.order_by().values_list("status").annotate(n=Count("id")))
