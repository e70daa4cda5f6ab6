"""MMS: a JPEG checked when it is uploaded (what Korean gateways refuse is refused here, with the reason, storing
nothing), a text message with a picture goes as MMS under the LMS text limits and the same law as any SMS ad, and
the picture reaches the file sink and the NHN-style gateway (uploaded once, then referenced by its file id)."""
from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from dangol.core.audit import Actor
from dangol.messaging import images
from dangol.messaging import services as messaging
from dangol.messaging.delivery import dispatch
from dangol.messaging.models import Message, MessageImage
from dangol.messaging.testing import LocalProvider

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


def picture(kind: str = "JPEG", size=(400, 300), quality: int = 80) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 60)).save(out, format=kind, quality=quality) if kind == "JPEG" else \
        Image.new("RGB", size, (200, 30, 60)).save(out, format=kind)
    return out.getvalue()


@pytest.fixture
def staff(mina):
    return Actor(user=mina)


@pytest.fixture
def flyer(staff):
    return images.add_image(actor=staff, name="겨울 세일 flyer.JPG", data=picture())


def test_a_jpeg_is_stored_once_with_its_size(staff, flyer):
    assert (flyer.width, flyer.height) == (400, 300) and flyer.size == len(picture()) and flyer.name == "flyer.jpg"
    again = images.add_image(actor=staff, name="other.jpg", data=picture())
    assert again.pk == flyer.pk and MessageImage.objects.count() == 1
    assert images.image_bytes(flyer.pk) == ("flyer.jpg", picture())


@pytest.mark.parametrize("data, says", [
    (b"", "empty"),
    (picture("PNG"), "JPEG pictures only"),
    (picture("GIF"), "JPEG pictures only"),
    (b"not a picture at all", "not a picture"),
    (picture()[:200], "not a picture"),  # cut off
    (picture(size=(1600, 200)), "1500 × 1440"),
    (picture(size=(200, 1500)), "1500 × 1440"),
])
def test_what_a_gateway_refuses_is_refused_on_upload_and_nothing_is_stored(staff, data, says):
    with pytest.raises(ValidationError) as refused:
        images.add_image(actor=staff, name="x.jpg", data=data)
    assert says in refused.value.message_dict["image"][0]
    assert not MessageImage.objects.exists()


def test_a_heavy_picture_is_refused_with_its_size(staff, settings):
    settings.DANGOL_MMS_IMAGE_MAX_BYTES = 10 * 1024
    heavy = Image.effect_noise((600, 600), 100).convert("RGB")
    out = io.BytesIO()
    heavy.save(out, format="JPEG", quality=95)
    with pytest.raises(ValidationError) as refused:
        images.add_image(actor=staff, name="big.jpg", data=out.getvalue())
    assert "at most 10 KB" in refused.value.message_dict["image"][0] and not MessageImage.objects.exists()


def test_only_staff_may_upload(flyer):
    with pytest.raises(ValidationError):
        images.add_image(actor=Actor(user=None), name="x.jpg", data=picture(size=(10, 10)))


def test_a_text_with_a_picture_is_an_mms_labelled_like_any_sms_ad(customer, flyer, clock):
    message = messaging.send(customer=customer, channel="sms", kind="ad", source="c", occurrence="1", body="겨울 세일", image=flyer)
    assert message.subtype == "mms" and message.image_id == flyer.pk and message.status == "queued"
    assert message.body.startswith("(광고)") and "무료수신거부" in message.body
    assert message.subject  # an MMS has a subject: the sender's name unless given
    clock.set("2026-11-24 22:00")  # no ads at night without night consent, MMS included
    night = messaging.send(customer=customer, channel="sms", kind="ad", source="c", occurrence="2", body="야간", image=flyer)
    assert night.status == "held" and night.subtype == "mms"


def test_a_picture_goes_by_text_message_only_and_the_text_keeps_the_lms_limit(customer, flyer, clock):
    with pytest.raises(ValidationError) as refused:
        messaging.send(customer=customer, channel="email", kind="info", source="c", occurrence="1", body="x", subject="s", image=flyer)
    assert "image" in refused.value.message_dict
    with pytest.raises(ValidationError):
        messaging.send(customer=customer, channel="sms", kind="info", source="c", occurrence="2", body="가" * 1001, image=flyer)
    assert not Message.objects.exists()


def test_send_bulk_and_a_test_send_carry_the_picture(customer, make_customer, flyer, staff, clock):
    other = make_customer("bakery", name="이바다", consents=[("sms", "marketing", True)])
    counts = messaging.send_bulk(rows=[{"customer_id": customer.pk}, {"customer_id": other.pk}], channel="sms", kind="ad",
                                 source="flyer", occurrence="1", body="{{name}} 겨울 세일", image=flyer)
    assert counts["created"] == 2 and counts["queued"] == 2
    assert set(Message.objects.filter(source="flyer").values_list("subtype", "image_id")) == {("mms", flyer.pk)}
    test = messaging.send_test(actor=staff, channel="sms", to_address="010-2222-3333", body="시험", image=flyer)
    assert test.subtype == "mms" and test.image_id == flyer.pk


def test_the_file_sink_writes_the_picture_once_beside_the_messages(customer, make_customer, flyer, settings, clock):
    other = make_customer("bakery", name="이바다", consents=[("sms", "marketing", True)])
    for c in (customer, other):
        messaging.send(customer=c, channel="sms", kind="ad", source="c", occurrence="1", body="세일", image=flyer)
    assert dispatch(max_seconds=10)["sent"] == 2
    outbox = settings.DATA_DIR / "outbox"
    written = [json.loads(p.read_text()) for p in (outbox / "sms").glob("*.json")]
    assert len(written) == 2 and {w["type"] for w in written} == {"mms"}
    [path] = {w["image"] for w in written}
    assert (outbox / path).read_bytes() == picture() and len(list((outbox / "images").iterdir())) == 1


def test_the_gateway_gets_the_picture_uploaded_once_and_each_mms_refers_to_it(customer, make_customer, flyer, settings, clock):
    people = [customer] + [make_customer("bakery", name=f"손님{i}", consents=[("sms", "marketing", True)]) for i in range(3)]
    with LocalProvider() as gateway:
        settings.MESSAGING_PROVIDERS = {"sms": "nhn", "kakao": "nhn", "email": "file"}
        settings.MESSAGING_NHN = {"SMS_URL": gateway.url, "ALIMTALK_URL": gateway.url, "SMS_APP_KEY": "app",
                                  "ALIMTALK_APP_KEY": "app", "SECRET_KEY": "secret", "KAKAO_SENDER_KEY": "sender", "TIMEOUT": 5}
        sent = [messaging.send(customer=c, channel="sms", kind="ad", source="c", occurrence="1", body="세일", image=flyer)
                for c in people]
        plain = messaging.send(customer=customer, channel="sms", kind="info", source="c", occurrence="2", body="안내")
        assert dispatch(max_seconds=10)["sent"] == 5
    [(file_id, stored)] = gateway.files.items()
    assert stored["bytes"] == picture() and stored["name"] == "flyer.jpg"
    for m in sent:
        got = gateway.deliveries[str(m.pk)]
        assert "/sender/ad-mms" in got["path"] and got["files"] == [file_id] and got["text"].startswith("(광고)")
    assert gateway.deliveries[str(plain.pk)]["files"] == [] and "/sender/sms" in gateway.deliveries[str(plain.pk)]["path"]


def test_an_upload_heavier_than_allowed_is_refused_before_it_is_read(staff, settings):
    settings.DANGOL_MMS_IMAGE_MAX_BYTES = 1024
    read = []

    class Upload:  # what Django hands a view: a name, the declared size, and the bytes on demand
        name, size = "big.jpg", len(picture())

        def read(self):
            read.append(1)
            return picture()

    with pytest.raises(ValidationError) as refused:
        images.add_upload(actor=staff, upload=Upload())
    assert "at most 1 KB" in refused.value.message_dict["image"][0] and not read and not MessageImage.objects.exists()
    settings.DANGOL_MMS_IMAGE_MAX_BYTES = 300 * 1024
    assert images.add_upload(actor=staff, upload=Upload()).size == len(picture()) and read == [1]
