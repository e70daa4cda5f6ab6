"""The member card link: signed with its own salt, time-limited, unforgeable, and what it shows."""
from __future__ import annotations

import datetime as dt

from django.core import signing

from dangol.loyalty import card, selectors, services


def test_a_token_opens_its_card_until_it_expires(program, make_customer):
    account = services.ensure_account(make_customer("bakery"))
    token = card.card_token(account.member_number)
    assert card.read_card_token(token) == account.member_number
    assert card.read_card_token(token, max_age=dt.timedelta(seconds=-1)) is None
    assert card.card_path(account.member_number).startswith("/m/")


def test_a_forged_or_foreign_token_opens_nothing(program, make_customer):
    account = services.ensure_account(make_customer("bakery"))
    token = card.card_token(account.member_number)
    payload, stamp, signature = token.rsplit(":", 2)
    other = services.ensure_account(make_customer("bakery"))
    forged = signing.TimestampSigner(salt=card.SALT).sign_object({"m": other.member_number}).split(":")[0] + f":{stamp}:{signature}"
    assert card.read_card_token(forged) is None
    assert card.read_card_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert card.read_card_token(signing.TimestampSigner(salt="another").sign_object({"m": account.member_number})) is None
    assert card.read_card_token(signing.TimestampSigner(salt=card.SALT).sign_object(["not", "a", "dict"])) is None
    assert card.read_card_token("") is None and card.read_card_token("x" * 400) is None


def test_the_card_shows_the_survivor_of_a_merged_member(program, make_customer, buy, alice):
    from dangol.core.audit import Actor
    from dangol.ingest.merge import merge_customers

    survivor, merged = make_customer("bakery"), make_customer("bakery")
    buy(merged, "croissant", 2)
    old_number = services.ensure_account(merged).member_number
    merge_customers(actor=Actor(user=alice), survivor=survivor, merged=merged)
    data = selectors.member_card(old_number)
    assert data.customer.pk == survivor.pk and data.summary.balance == 90
    assert selectors.find_member("1234") is None
