"""The customer list's query parameters as queryset filters, applied on top of the user's scope."""
from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from dangol.core.models import BusinessUnit
from dangol.customers.models import ContactKind, ContactPoint, Customer, Membership
from dangol.customers.services import normalize_name


def customers_matching(qs: QuerySet[Customer], *, q: str = "", phone_e164: str = "", last4: str = "", stage: str = "",
                       unit: BusinessUnit | None = None, tag: str = "") -> QuerySet[Customer]:
    """Every given filter must hold. Subqueries rather than joins, so a customer is never listed twice."""
    if q:
        qs = qs.filter(name__icontains=normalize_name(q))
    if phone_e164:
        qs = qs.filter(Exists(ContactPoint.objects.filter(customer=OuterRef("pk"), kind=ContactKind.PHONE, value=phone_e164)))
    if last4:
        qs = qs.filter(Exists(ContactPoint.objects.filter(customer=OuterRef("pk"), kind=ContactKind.PHONE, last4=last4)))
    if stage:
        qs = qs.filter(stage=stage)
    if unit is not None:
        qs = qs.filter(Exists(Membership.objects.filter(customer=OuterRef("pk"), unit=unit)))
    if tag:
        qs = qs.filter(Exists(Customer.tags.through.objects.filter(customer=OuterRef("pk"), tag__name=normalize_name(tag))))
    return qs
