"""Login security of the staff app: two factors for admins and managers, lockout, session expiry, password policy,
security headers."""
from __future__ import annotations

import time

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from dangol.core.models import AuditEvent
from dangol.web import security

from tests.helpers import PASSWORD


def code_for(device: TOTPDevice, offset_steps: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + offset_steps * device.step
    return f"{totp.token():0{device.digits}d}"


def password_login(client, user, password=PASSWORD, **extra):
    return client.post(reverse("web:login"), {"username": user.username, "password": password, **extra})


@pytest.fixture
def two_factors(settings):
    settings.DANGOL_2FA_REQUIRED = True


# --- two factors

def test_a_manager_without_a_device_is_sent_to_enrol_and_then_gets_in(two_factors, client, mina):
    password_login(client, mina)

    response = client.get(reverse("web:home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("web:two_factor_setup"))

    page = client.get(response["Location"])
    assert page.status_code == 200 and b"totp-secret" in page.content
    qr = client.get(reverse("web:two_factor_qr"))
    assert qr["Content-Type"] == "image/svg+xml" and b"<svg" in qr.content

    device = TOTPDevice.objects.get(user=mina, confirmed=False)
    wrong = client.post(reverse("web:two_factor_setup"), {"code": "000000" if code_for(device) != "000000" else "111111"})
    assert wrong.status_code == 200 and not TOTPDevice.objects.filter(user=mina, confirmed=True).exists()
    device.refresh_from_db()
    assert not device.verify_is_allowed()[0]  # django-otp slows down guessing after a wrong code
    device.throttle_reset()

    done = client.post(reverse("web:two_factor_setup"), {"code": code_for(device), "next": "/"})
    assert done.status_code == 302
    assert client.get(reverse("web:home")).status_code == 200
    assert AuditEvent.objects.filter(action="two_factor.enrol", object_id=str(mina.pk)).exists()


def test_a_manager_with_a_device_must_give_the_code_after_the_password(two_factors, client, mina):
    device = TOTPDevice.objects.create(user=mina, name="phone", confirmed=True)
    password_login(client, mina)

    response = client.get(reverse("web:customer_search"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("web:two_factor_verify"))
    assert client.get("/admin/").status_code == 302  # the admin too

    assert client.post(reverse("web:two_factor_verify"), {"code": "12345"}).status_code == 200  # malformed
    ok = client.post(reverse("web:two_factor_verify"), {"code": code_for(device), "next": reverse("web:customer_search")})
    assert ok.status_code == 302 and ok["Location"] == reverse("web:customer_search")
    assert client.get(reverse("web:home")).status_code == 200


def test_a_wrong_code_is_refused_and_audited(two_factors, client, mina):
    device = TOTPDevice.objects.create(user=mina, name="phone", confirmed=True)
    password_login(client, mina)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"

    with translation.override("en"):
        response = client.post(reverse("web:two_factor_verify"), {"code": wrong}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200 and b"not right" in response.content
    assert client.get(reverse("web:home")).status_code == 302
    assert AuditEvent.objects.filter(action="two_factor.failed").exists()


def test_the_next_parameter_cannot_leave_the_site(two_factors, client, mina):
    device = TOTPDevice.objects.create(user=mina, name="phone", confirmed=True)
    password_login(client, mina)

    response = client.post(reverse("web:two_factor_verify"), {"code": code_for(device), "next": "https://evil.example/"})

    assert response["Location"] == reverse("web:home")


def test_staff_need_no_second_factor(two_factors, client, bora):
    password_login(client, bora)
    assert client.get(reverse("web:home")).status_code == 200


def test_an_unverified_admin_session_cannot_use_the_api(two_factors, client, alice):
    TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)
    password_login(client, alice)

    response = client.get("/api/v1/customers")

    assert response.status_code == 403 and response.json()["code"] == "two_factor_required"


def test_without_the_switch_force_login_works_as_before(client, alice):
    client.force_login(alice)
    assert client.get(reverse("web:home")).status_code == 200


# --- lockout (django-axes)

def test_five_wrong_passwords_lock_the_account_from_that_address(client, bora, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(5):
        assert password_login(client, bora, password="wrong-password").status_code in (200, 429)

    locked = password_login(client, bora)

    assert locked.status_code == 429
    assert client.get(reverse("web:home")).status_code == 302  # not logged in


def test_a_success_before_the_limit_resets_the_count(client, bora):
    for _ in range(4):
        password_login(client, bora, password="wrong-password")
    assert password_login(client, bora).status_code == 302
    client.logout()
    for _ in range(4):
        password_login(client, bora, password="wrong-password")
    assert password_login(client, bora).status_code == 302


def test_the_lock_is_per_account_and_address(client, bora, mina):
    for _ in range(5):
        password_login(client, bora, password="wrong-password")

    assert password_login(client, mina).status_code == 302
    other_ip = password_login(client.__class__(REMOTE_ADDR="10.0.0.9"), bora)
    assert other_ip.status_code == 302


# --- session expiry

def test_an_idle_session_expires(client, bora, settings):
    client.force_login(bora)
    assert client.get(reverse("web:home")).status_code == 200
    session = client.session
    session[security.SEEN_AT] = int(time.time()) - settings.DANGOL_SESSION_IDLE_SECONDS - 5
    session.save()

    response = client.get(reverse("web:home"))

    assert response.status_code == 302 and response["Location"].startswith(reverse("web:login"))
    assert client.get(reverse("web:home")).status_code == 302


def test_a_session_ends_after_the_absolute_limit_even_when_busy(client, bora, settings):
    client.force_login(bora)
    session = client.session
    session[security.LOGIN_AT] = int(time.time()) - settings.DANGOL_SESSION_ABSOLUTE_SECONDS - 5
    session[security.SEEN_AT] = int(time.time())
    session.save()

    assert client.get(reverse("web:home")).status_code == 302


def test_an_expired_session_on_the_api_is_a_401(client, bora, settings):
    client.force_login(bora)
    client.get(reverse("web:home"))
    session = client.session
    session[security.SEEN_AT] = int(time.time()) - settings.DANGOL_SESSION_IDLE_SECONDS - 5
    session.save()

    assert client.get("/api/v1/customers").status_code in (401, 403)


def test_an_active_session_stays(client, bora):
    client.force_login(bora)
    for _ in range(3):
        assert client.get(reverse("web:home")).status_code == 200


# --- password policy

@pytest.mark.parametrize("password", ["short1!", "1234567890123", "password1234", "bora@example.com", "qwertyuiop"])
def test_weak_passwords_are_refused(bora, password):
    bora.email = "bora@example.com"
    with pytest.raises(ValidationError):
        validate_password(password, user=bora)


def test_a_good_password_passes_and_the_change_page_uses_the_policy(client, bora):
    validate_password("굳은-다짐-2026-봄", user=bora)
    client.force_login(bora)

    weak = client.post(reverse("web:password_change"), {"old_password": PASSWORD, "new_password1": "12345678901",
                                                        "new_password2": "12345678901"})
    assert weak.status_code == 200
    ok = client.post(reverse("web:password_change"), {"old_password": PASSWORD, "new_password1": "굳은-다짐-2026-봄",
                                                      "new_password2": "굳은-다짐-2026-봄"})
    assert ok.status_code == 302
    bora.refresh_from_db()
    assert bora.check_password("굳은-다짐-2026-봄")


# --- headers

@pytest.mark.parametrize("path", ["/login/", "/", "/customers/search/?q=1", "/security/"])
def test_every_page_has_a_strict_csp_and_the_usual_headers(client, bora, path):
    client.force_login(bora)

    response = client.get(path)

    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def test_the_login_page_has_no_inline_script_or_handler(client):
    html = client.get("/login/").content.decode()
    import re

    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\son[a-z]+\s*=", html)
    assert not re.search(r"\sstyle\s*=", html)


def test_the_api_docs_page_keeps_its_own_stricter_policy(client):
    response = client.get("/api/v1/docs")
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
