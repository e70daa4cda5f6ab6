"""Encryption at rest (ciphertext in the column, rotation), masking helpers, and no personal data in the logs."""
from __future__ import annotations

import io
import json
import logging

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from dangol.core import crypto
from dangol.core.logging import JsonFormatter, ScrubPersonalData
from dangol.core.masking import mask_address, mask_contact, mask_email, mask_name, mask_phone
from dangol.customers import services as customer_services
from dangol.customers.models import Interaction

SECRET = "유방암 수술 후 회복 중"


def raw_column(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT sensitive_text, summary, body FROM customers_interaction WHERE id = %s", [pk])
        return " | ".join(cursor.fetchone())


@pytest.fixture
def key_one(settings):
    key = Fernet.generate_key().decode()
    settings.DANGOL_FIELD_KEYS = key
    return key


def test_a_sensitive_note_is_stored_as_ciphertext_and_read_back_in_clear(make_customer, system, key_one):
    note = customer_services.add_note(actor=system, customer=make_customer(), unit=None, text=SECRET, sensitive=True)
    stored = raw_column(note.pk)
    assert stored.startswith(crypto.TOKEN_PREFIX) and SECRET not in stored
    assert SECRET.encode() not in stored.encode()
    fresh = Interaction.objects.get(pk=note.pk)
    assert fresh.sensitive and fresh.sensitive_text == SECRET and fresh.summary == "🔒" and fresh.body == ""


def test_rotation_re_encrypts_with_the_new_key_and_the_old_one_can_then_go(make_customer, system, settings, key_one):
    notes = [customer_services.add_note(actor=system, customer=make_customer(), unit=None, text=f"{SECRET} {i}", sensitive=True)
             for i in range(3)]
    customer_services.add_note(actor=system, customer=make_customer(), unit=None, text="plain note")
    before = {n.pk: raw_column(n.pk) for n in notes}
    key_two = Fernet.generate_key().decode()

    settings.DANGOL_FIELD_KEYS = key_two  # the new key alone cannot read the old values
    with pytest.raises(ImproperlyConfigured):
        Interaction.objects.get(pk=notes[0].pk)

    settings.DANGOL_FIELD_KEYS = f"{key_two},{key_one}"
    out = io.StringIO()
    call_command("privacy", "rotate-keys", "--batch", "2", stdout=out)
    assert out.getvalue().strip().splitlines()[-1] == "rotated: 3"
    assert all(raw_column(n.pk) != before[n.pk] for n in notes)

    settings.DANGOL_FIELD_KEYS = key_two  # old key removed: everything still reads
    assert sorted(Interaction.objects.filter(sensitive=True).values_list("sensitive_text", flat=True)) == \
        [f"{SECRET} {i}" for i in range(3)]


def test_production_refuses_to_run_without_keys_and_a_bad_key_is_not_echoed(settings):
    settings.DANGOL_FIELD_KEYS = ""
    settings.DANGOL_ENV = "production"
    with pytest.raises(ImproperlyConfigured):
        crypto.encrypt("x")
    settings.DANGOL_ENV = "development"
    settings.DANGOL_FIELD_KEYS = "not-a-key-s3cr3t"
    with pytest.raises(ImproperlyConfigured) as caught:
        crypto.encrypt("x")
    assert "s3cr3t" not in str(caught.value)


def test_without_keys_development_derives_one_from_the_secret_key(settings):
    settings.DANGOL_FIELD_KEYS = ""
    settings.DANGOL_ENV = "development"
    assert crypto.keys() == [crypto.derived_key(settings.SECRET_KEY)]
    assert crypto.decrypt(crypto.encrypt("안녕")) == "안녕"


def test_generate_key_prints_a_usable_key():
    out = io.StringIO()
    call_command("privacy", "generate-key", stdout=out)
    Fernet(out.getvalue().strip().encode())


@pytest.mark.parametrize("value, masked", [
    ("홍길동", "홍*동"), ("남궁민수", "남**수"), ("김솔", "김*"), ("이", "이"), ("", ""), ("Kim Minji", "K** M****"),
])
def test_names_are_masked(value, masked):
    assert mask_name(value) == masked


def test_phones_emails_and_addresses_are_masked():
    assert mask_phone("+821012345678") == "010-****-5678"
    assert mask_phone("") == ""
    assert mask_email("hong@example.com") == "h***@example.com"
    assert mask_contact("phone", "+821012345678") == "010-****-5678"
    assert mask_contact("email", "hong@example.com") == "h***@example.com"
    assert mask_address("세종대로 110 101동") == "세종대로 ***"


@pytest.fixture
def captured_log():
    """A real handler with the project's filter and JSON formatter, on a real logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ScrubPersonalData())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("dangol.test_privacy")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_phone_numbers_and_emails_never_reach_the_log(captured_log):
    logger, stream = captured_log
    logger.info("lookup %s by %s", "010-2468-1357", "gildong.hong@example.com")
    logger.info("international +82 10 2468 1357 and +821024681357")
    try:
        raise ValueError("duplicate key value (phone)=(+821024681357) for hong@example.com")
    except ValueError:
        logger.exception("import failed")
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.strip().splitlines()]
    assert len(lines) == 3
    for needle in ("2468", "1357", "gildong", "hong@"):
        assert needle not in text, needle
    assert "[phone]" in lines[0]["msg"] and "[email]" in lines[0]["msg"]


def test_the_settings_route_every_log_line_through_the_filter():
    from django.conf import settings

    assert "scrub" in settings.LOGGING["handlers"]["console"]["filters"]
    root = logging.getLogger()
    assert any(isinstance(f, ScrubPersonalData) for h in root.handlers for f in h.filters)


def test_a_customer_never_prints_its_name(make_customer):
    customer = make_customer(name="홍길동")
    assert "홍길동" not in str(customer) and "홍길동" not in repr(customer)


def test_request_lines_with_search_terms_reach_the_log_without_their_query(client, alice):
    """A real request through the development server's logger and the configured console handler."""
    from urllib.parse import quote

    server_logger = logging.getLogger("django.server")
    handler = next(h for h in server_logger.handlers if any(isinstance(f, ScrubPersonalData) for f in h.filters))
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        line = f"GET /customers/search/?q={quote('홍길동')}&email={quote('hong@example.com')} HTTP/1.1"
        server_logger.info('"%s" %s %s', line, "200", "512")
        logging.getLogger("dangol.test").warning("fetching https://api.example.com/v1/lookup?name=%s", quote("홍길동"))
    finally:
        handler.setStream(previous)
    text = stream.getvalue()
    assert "/customers/search/?[query]" in text and "https://api.example.com/v1/lookup?[query]" in text
    assert quote("홍길동") not in text and "hong" not in text
