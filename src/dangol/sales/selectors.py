from __future__ import annotations

from django.db.models import QuerySet

from dangol.core.models import BusinessUnit, User
from dangol.core.selectors import units_for

from .models import Order, Product


def orders_for(user: User) -> QuerySet[Order]:
    """Orders of the user's units (admins: all)."""
    qs = Order.objects.all()
    if not user.sees_all_units:
        qs = qs.filter(unit__in=units_for(user))
    return qs


def orders_of_customer(*, user: User, customer_id: int) -> QuerySet[Order]:
    return orders_for(user).filter(customer_id=customer_id).select_related("unit").prefetch_related("lines__product")


def products_for_unit(unit: BusinessUnit) -> QuerySet[Product]:
    return Product.objects.filter(unit=unit, is_active=True).select_related("category").order_by("category__name", "name")
