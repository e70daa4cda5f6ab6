"""Writes of the core app: staff accounts and their access."""
from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from .models import BusinessUnit, Role, User

MANAGER_GROUP = "Managers"
# Managers keep the reference data of their business in the admin; admins hold every permission.
MANAGER_PERMISSIONS = [
    ("sales", "product", ("view", "add", "change")),
    ("sales", "category", ("view", "add", "change")),
    ("core", "businessunit", ("view",)),
]


def ensure_manager_group() -> Group:
    group, _ = Group.objects.get_or_create(name=MANAGER_GROUP)
    codenames = [f"{action}_{model}" for app, model, actions in MANAGER_PERMISSIONS for action in actions]
    perms = Permission.objects.filter(codename__in=codenames, content_type__app_label__in={a for a, _m, _x in MANAGER_PERMISSIONS})
    group.permissions.set(perms)
    return group


@transaction.atomic
def create_staff_user(*, username: str, password: str, role: str, units: list[BusinessUnit] | None = None,
                      first_name: str = "", last_name: str = "", email: str = "") -> User:
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}")
    user = User(username=username, first_name=first_name, last_name=last_name, email=email, role=role)
    user.set_password(password)
    user.save()
    if units:
        user.units.set(units)
    apply_role(user)
    return user


def apply_role(user: User) -> None:
    """Admins are superusers; managers reach the admin for reference data; staff use the staff app only."""
    user.is_superuser = user.role == Role.ADMIN
    user.is_staff = user.role in (Role.ADMIN, Role.MANAGER)
    user.save(update_fields=["is_superuser", "is_staff"])
    if user.role == Role.MANAGER:
        user.groups.add(ensure_manager_group())
    else:
        user.groups.remove(*Group.objects.filter(name=MANAGER_GROUP))
