"""The role table of dangol.core.permissions, pinned: a change of who may do what is a decision, not an accident."""
import pytest

from dangol.core.models import Role
from dangol.core.permissions import Action, actions_of, may, may_work_at, needs_two_factors


@pytest.mark.parametrize("action, staff, manager, admin", [
    (Action.VIEW_CUSTOMERS, True, True, True),
    (Action.EDIT_CUSTOMERS, True, True, True),
    (Action.REDEEM_POINTS, True, True, True),
    (Action.VIEW_FULL_CONTACTS, False, True, True),
    (Action.ADJUST_POINTS, False, True, True),
    (Action.IMPORT, False, True, True),
    (Action.REVIEW_DUPLICATES, False, True, True),
    (Action.VIEW_DASHBOARD, False, True, True),
    (Action.CREATE_CAMPAIGNS, False, True, True),
    (Action.APPROVE_CAMPAIGNS, False, True, True),
    (Action.EXPORT, False, True, True),
    (Action.ERASE, False, False, True),
    (Action.VIEW_ACCESS_LOG, False, False, True),
    (Action.MANAGE_STAFF, False, False, True),
    (Action.MANAGE_INTEGRATIONS, False, False, True),
])
def test_the_role_table(alice, mina, bora, action, staff, manager, admin):
    assert (may(bora, action), may(mina, action), may(alice, action)) == (staff, manager, admin)


def test_every_action_is_in_the_table(alice):
    assert actions_of(alice) == frozenset(Action)


def test_actions_at_a_unit_need_the_unit(units, mina, alice):
    assert may(mina, Action.ADJUST_POINTS, unit=units["seoul-hotel"])
    assert not may(mina, Action.ADJUST_POINTS, unit=units["bakery"])
    assert may(alice, Action.ADJUST_POINTS, unit=units["bakery"])
    assert may_work_at(mina, units["seoul-hotel"].pk) and not may_work_at(mina, units["busan-hotel"])


def test_nobody_without_an_active_account(bora, django_user_model):
    from django.contrib.auth.models import AnonymousUser

    assert not may(AnonymousUser(), Action.VIEW_CUSTOMERS) and not may(None, Action.VIEW_CUSTOMERS)
    bora.is_active = False
    assert not may(bora, Action.VIEW_CUSTOMERS)


def test_who_needs_two_factors(alice, mina, bora):
    assert needs_two_factors(alice) and needs_two_factors(mina) and not needs_two_factors(bora)
    assert Role.STAFF not in {r for r in Role if needs_two_factors(type("U", (), {"is_authenticated": True, "is_active": True,
                                                                                   "is_superuser": False, "role": r})())}
