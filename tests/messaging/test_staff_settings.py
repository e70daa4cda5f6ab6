"""The services behind the settings pages: suppression list, frequency caps, sender profiles; scoped message reads."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from dangol.core.audit import Actor
from dangol.messaging import selectors, services as messaging
from dangol.messaging.models import Message

pytestmark = pytest.mark.django_db


def test_suppressing_a_customer_blocks_their_queued_messages(alice, customer):
    queued = messaging.send(customer=customer, channel="sms", kind="ad", source="c", occurrence="1", body="할인")
    messaging.add_suppression(actor=Actor(user=alice), customer=customer, reason="asked by phone")
    queued.refresh_from_db()
    assert (queued.status, queued.reason) == ("blocked", "suppressed")
    entry = messaging.add_suppression(actor=Actor(user=alice), address="010-2222-3333", reason="complaint")
    assert entry.address == "+821022223333"
    with pytest.raises(ValidationError):
        messaging.add_suppression(actor=Actor(user=alice), address="not a phone", reason="x")


def test_frequency_caps_and_sender_profiles_are_validated(alice, units, customer):
    actor = Actor(user=alice)
    with pytest.raises(ValidationError):
        messaging.set_frequency_cap(actor=actor, channel="sms", max_messages=0)
    messaging.set_frequency_cap(actor=actor, channel="sms", max_messages=1, period_days=7)
    assert [messaging.send(customer=customer, channel="sms", kind="ad", source="c", occurrence=str(i), body="할인").status
            for i in range(2)] == ["queued", "blocked"]
    messaging.set_frequency_cap(actor=actor, channel="sms", max_messages=None)
    with pytest.raises(ValidationError) as err:
        messaging.set_sender_profile(actor=actor, unit=units["bakery"], name="빵집 😀", contact="02-1", optout_number="02-123")
    assert set(err.value.message_dict) == {"name", "optout_number"}
    messaging.set_sender_profile(actor=actor, unit=units["bakery"], name="한빛 베이커리", contact="02-111-2222", optout_number="080-111-2222")
    message = messaging.send(customer=customer, channel="sms", kind="ad", source="c", occurrence="x", body="할인", unit=units["bakery"])
    assert message.body.startswith("(광고)한빛 베이커리") and message.body.endswith("080-111-2222")


def test_staff_see_the_messages_of_their_units_only(alice, mina, bora, customer):
    messaging.send(customer=customer, channel="sms", kind="info", source="s", occurrence="1", body="안내")
    assert selectors.messages_for(alice).count() == 1
    assert selectors.messages_for(bora).count() == 1  # the customer is the bakery's
    assert selectors.messages_for(mina).count() == 0
    assert selectors.status_counts(Message.objects.all()) == {"queued": 1}


def test_admins_read_the_outbox_in_the_admin_without_personal_text(client, alice, customer):
    message = messaging.send(customer=customer, channel="sms", kind="info", source="s", occurrence="1", body="비밀 안내문")
    client.force_login(alice)
    assert client.get("/admin/messaging/message/").status_code == 200
    page = client.get(f"/admin/messaging/message/{message.pk}/change/")
    assert page.status_code == 200 and "비밀 안내문" not in page.content.decode()
