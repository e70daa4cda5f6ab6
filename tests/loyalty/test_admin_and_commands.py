"""The program's configuration in the admin (admins only; the ledger read-only) and the `dangol loyalty` command."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from dangol.loyalty import card
from dangol.loyalty.models import EarnRule, LedgerEntry, Program, Tier

from tests.helpers import login

MODELS = ["program", "earnrule", "categorymultiplier", "promotion", "tier", "coupontemplate", "ledgerentry", "account",
          "coupon", "referral", "tierchange"]


def test_admins_configure_the_program_and_only_read_the_ledger(client, alice, program, make_customer, buy):
    buy(make_customer("bakery"), "croissant")
    login(client, alice)
    for model in MODELS:
        assert client.get(reverse(f"admin:loyalty_{model}_changelist")).status_code == 200, model
    for model in ["earnrule", "categorymultiplier", "promotion", "tier", "coupontemplate"]:
        assert client.get(reverse(f"admin:loyalty_{model}_add")).status_code == 200, model
    assert client.get(reverse("admin:loyalty_program_add")).status_code == 403  # one program
    assert client.get(reverse("admin:loyalty_ledgerentry_add")).status_code == 403
    entry = LedgerEntry.objects.get()
    page = client.get(reverse("admin:loyalty_ledgerentry_change", args=[entry.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()


def test_managers_and_staff_do_not_reach_the_configuration(client, mina, program):
    login(client, mina)
    assert client.get(reverse("admin:loyalty_tier_changelist")).status_code == 403


def test_setup_configures_once_and_card_link_prints_a_working_path(units, make_customer):
    out = StringIO()
    call_command("loyalty", "setup", stdout=out)
    assert out.getvalue().strip() == "program: Hanbit Members, earn rules created: 4, tiers created: 3"
    call_command("loyalty", "setup", stdout=out)
    assert out.getvalue().strip().endswith("earn rules created: 0, tiers created: 0")
    assert EarnRule.objects.get(unit=units["seoul-hotel"]).rate_bp == 300
    assert list(Tier.objects.values_list("code", flat=True)) == ["silver", "gold", "vip"]
    assert Program.objects.count() == 1
    customer = make_customer("bakery")
    out = StringIO()
    call_command("loyalty", "card-link", str(customer.pk), stdout=out)
    path = out.getvalue().strip()
    assert path.startswith("/m/") and card.read_card_token(path[3:-1])
    with pytest.raises(CommandError):
        call_command("loyalty", "card-link", "999999")
