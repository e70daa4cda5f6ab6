"""An SMS campaign with a picture goes out as MMS to every treated recipient; a picture on another channel, or a bad
one, is refused on the form and leaves neither a campaign nor a stored picture."""
from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from dangol.campaigns import segments
from dangol.campaigns.models import Campaign
from dangol.core.audit import Actor
from dangol.messaging.models import Message, MessageImage

pytestmark = pytest.mark.django_db


def jpeg(kind: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (480, 320), (250, 200, 0)).save(out, format=kind)
    return out.getvalue()


def test_an_sms_campaign_with_a_picture_is_sent_as_mms(client, town, mina, units):
    segment = segments.create_segment(actor=Actor(user=mina), name="hotel", unit=units["seoul-hotel"], tree={"op": "and", "rules": []})
    client.force_login(mina)
    data = {"name": "Winter flyer", "segment": segment.pk, "unit": units["seoul-hotel"].pk, "channel": "sms", "kind": "ad",
            "body_a": "{{ name }}님, 겨울 특가", "holdout_pct": 0, "attribution_days": 14, "share_a": 50}
    by_email = client.post(reverse("web:campaign_new"), {**data, "channel": "email", "subject_a": "겨울",
                                                         "image": SimpleUploadedFile("f.jpg", jpeg())}, HTTP_ACCEPT_LANGUAGE="en")
    assert by_email.status_code == 200 and by_email.context["form"].errors["image"]
    png = client.post(reverse("web:campaign_new"), {**data, "image": SimpleUploadedFile("f.png", jpeg("PNG"))},
                      HTTP_ACCEPT_LANGUAGE="en")
    assert png.status_code == 200 and "JPEG" in png.context["form"].errors["image"][0]
    assert not Campaign.objects.exists() and not MessageImage.objects.exists()
    answer = client.post(reverse("web:campaign_new"), {**data, "image": SimpleUploadedFile("flyer.jpg", jpeg())})
    assert answer.status_code == 302
    campaign = Campaign.objects.get()
    assert bytes(campaign.image.content) == jpeg()
    detail = client.get(reverse("web:campaign_detail", args=[campaign.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert b'data-testid="campaign-image"' in detail.content
    client.post(reverse("web:campaign_action", args=[campaign.pk, "approve"]))
    client.post(reverse("web:campaign_action", args=[campaign.pk, "send-now"]))
    sent = Message.objects.filter(source=campaign.source)
    assert sent.count() == 2 and set(sent.values_list("subtype", "image_id")) == {("mms", campaign.image_id)}
