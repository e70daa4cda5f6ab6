from __future__ import annotations

from django.db.models import QuerySet

from .models import BusinessUnit, User


def units_for(user: User) -> QuerySet[BusinessUnit]:
    """The business units whose customers and orders the user may see."""
    if user.sees_all_units:
        return BusinessUnit.objects.filter(is_active=True)
    return user.units.filter(is_active=True)
