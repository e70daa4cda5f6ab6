"""Who may do what, in one place: role × business unit.

Two questions are asked everywhere:

- **Which business units** may this account work with? Admins (and superusers): every active unit. Managers and
  staff: the units they are assigned to (``units_for``). A customer, order, case… outside them answers 404, like
  one that does not exist; a unit named explicitly outside them answers 403.
- **Which actions** may this role take? The table ``ROLE_ACTIONS`` below. Views, API endpoints and services ask
  ``may(user, action)`` (or ``may(user, action, unit=…)`` for an action at one unit) instead of comparing roles.

The permission matrix test (``tests/security/test_permission_matrix.py``) walks every URL of the staff app and the
API with each role and checks the unit scope; ``tests/security/test_permissions.py`` pins this table.
"""
from __future__ import annotations

from enum import StrEnum

from .models import BusinessUnit, Role, User
from .selectors import units_for


class Action(StrEnum):
    """Actions whose permission depends on the role (reading customers of one's own units needs none)."""

    VIEW_CUSTOMERS = "view_customers"            # masked lists and 360° pages of the own units
    EDIT_CUSTOMERS = "edit_customers"            # register, change, record purchases, notes
    VIEW_FULL_CONTACTS = "view_full_contacts"    # unmasked phone numbers and emails (audited)
    REDEEM_POINTS = "redeem_points"              # at the counter
    ADJUST_POINTS = "adjust_points"              # manual corrections with a reason
    IMPORT = "import"                            # upload customer and order files
    REVIEW_DUPLICATES = "review_duplicates"      # merge / unmerge, flagged orders
    VIEW_DASHBOARD = "view_dashboard"            # analytics of the own units
    CREATE_CAMPAIGNS = "create_campaigns"
    APPROVE_CAMPAIGNS = "approve_campaigns"
    EXPORT = "export"                            # downloads of personal data (a reason is asked)
    ERASE = "erase"                              # data-subject erasure and processing suspension
    VIEW_ACCESS_LOG = "view_access_log"
    MANAGE_STAFF = "manage_staff"                # accounts, roles, units
    MANAGE_INTEGRATIONS = "manage_integrations"  # API tokens and webhooks


_STAFF = frozenset({Action.VIEW_CUSTOMERS, Action.EDIT_CUSTOMERS, Action.REDEEM_POINTS})
_MANAGER = _STAFF | {
    Action.VIEW_FULL_CONTACTS, Action.ADJUST_POINTS, Action.IMPORT, Action.REVIEW_DUPLICATES, Action.VIEW_DASHBOARD,
    Action.CREATE_CAMPAIGNS, Action.APPROVE_CAMPAIGNS, Action.EXPORT,
}
_ADMIN = frozenset(Action)

ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.STAFF: _STAFF,
    Role.MANAGER: frozenset(_MANAGER),
    Role.ADMIN: _ADMIN,
}

# Roles whose accounts must use a second factor when DANGOL_2FA_REQUIRED is on.
ROLES_NEEDING_TWO_FACTORS = frozenset({Role.ADMIN, Role.MANAGER})


def role_of(user: User | None) -> str | None:
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    return Role.ADMIN if user.is_superuser else user.role


def may(user: User | None, action: Action | str, *, unit: BusinessUnit | None = None) -> bool:
    """True when the user's role allows ``action`` (at ``unit``, when given: a unit of the user's scope)."""
    role = role_of(user)
    if role is None or Action(action) not in ROLE_ACTIONS.get(role, frozenset()):
        return False
    return unit is None or may_work_at(user, unit)


def may_work_at(user: User | None, unit: BusinessUnit | int) -> bool:
    """True when ``unit`` is one of the user's business units (every active unit for admins)."""
    if role_of(user) is None:
        return False
    unit_id = unit if isinstance(unit, int) else unit.pk
    return units_for(user).filter(pk=unit_id).exists()


def needs_two_factors(user: User | None) -> bool:
    return role_of(user) in ROLES_NEEDING_TWO_FACTORS


def actions_of(user: User | None) -> frozenset[Action]:
    role = role_of(user)
    return ROLE_ACTIONS.get(role, frozenset()) if role else frozenset()
