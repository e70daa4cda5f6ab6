"""Messaging fixtures: a frozen Seoul clock, the file sink under a temporary data dir, a webhook secret."""
from __future__ import annotations

import datetime as dt
from unittest import mock
from zoneinfo import ZoneInfo

import pytest

SEOUL = ZoneInfo("Asia/Seoul")


@pytest.fixture(autouse=True)
def _messaging_settings(settings, tmp_path):
    from dangol.messaging import providers

    settings.DATA_DIR = tmp_path / "data"
    settings.MESSAGING_PROVIDERS = {"sms": "file", "kakao": "file", "email": "file"}
    settings.MESSAGING_WEBHOOK_SECRET = "test-secret"
    settings.MESSAGING_RATE_LIMITS = {}
    settings.MESSAGING_TRANSACTION_EXCEPTION = False
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": settings.TASK_QUEUES}}
    providers.reset()
    yield
    providers.reset()


class Clock:
    """``clock.set("2026-11-24 10:00")`` (Seoul time): timezone.now() answers that until changed."""

    def __init__(self):
        self.now = dt.datetime(2026, 11, 24, 1, 0, tzinfo=dt.timezone.utc)  # 10:00 in Seoul

    def set(self, seoul: str) -> dt.datetime:
        self.now = dt.datetime.fromisoformat(seoul).replace(tzinfo=SEOUL).astimezone(dt.timezone.utc)
        return self.now

    def advance(self, **delta) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


@pytest.fixture
def clock():
    c = Clock()
    with mock.patch("django.utils.timezone.now", side_effect=lambda: c.now):
        yield c


@pytest.fixture
def customer(make_customer, clock):
    """한 고객 with a phone, an email, SMS + email + Kakao ad consent (no night consent)."""
    return make_customer("bakery", name="김하늘", email="haneul@example.com",
                         consents=[("sms", "marketing", True), ("email", "marketing", True), ("kakao", "marketing", True)])
