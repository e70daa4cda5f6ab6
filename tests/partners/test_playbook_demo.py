"""The playbook's demo data: a stamp card with stamped members, a partner with agreements and consents, an event."""
from __future__ import annotations

from django.core.management import call_command

from dangol.gatherings.models import Event
from dangol.loyalty.models import StampCard, StampEntry
from dangol.partners.models import Agreement, ThirdPartyConsent


def test_the_demo_data_is_created_once(units, make_customer):
    for i in range(3):
        make_customer("bakery", name=f"빵손님{i}")
        make_customer("seoul-hotel", name=f"호텔손님{i}")
    call_command("playbook_demo")
    call_command("playbook_demo")
    assert StampCard.objects.count() == 1 and StampEntry.objects.count() == 3
    assert Agreement.objects.count() == 2 and ThirdPartyConsent.objects.count() == 3
    assert Event.objects.count() == 1
