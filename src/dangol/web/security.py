"""Security middleware of the staff app: headers (CSP…), session expiry, and the second factor of admins and managers.

Order in MIDDLEWARE (settings, security-api block): SecurityHeadersMiddleware right after Django's SecurityMiddleware;
OTPMiddleware right after AuthenticationMiddleware; SessionExpiryMiddleware and TwoFactorMiddleware after MessageMiddleware.
"""
from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from dangol.core.permissions import needs_two_factors

LOGIN_AT = "dangol_login_at"
SEEN_AT = "dangol_seen_at"
SEEN_WRITE_EVERY = 60  # seconds: refresh the idle clock at most once a minute, not a session write per request

# Reachable without the second factor (the login itself, the 2FA pages, static files, probes, language switch).
TWO_FACTOR_EXEMPT_PREFIXES = ("/login/", "/logout/", "/security/2fa/", "/static/", "/i18n/", "/healthz", "/readyz",
                              "/metrics", "/favicon")


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Permissions-Policy on every response that has not set its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.DANGOL_CSP
        response.setdefault("Permissions-Policy", settings.DANGOL_PERMISSIONS_POLICY)
        response.setdefault("X-Content-Type-Options", "nosniff")
        return response


def _stamp_login(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        now = int(time.time())
        request.session[LOGIN_AT] = now
        request.session[SEEN_AT] = now


user_logged_in.connect(_stamp_login, dispatch_uid="dangol.web.security.stamp_login")


class SessionExpiryMiddleware:
    """Logs out after DANGOL_SESSION_IDLE_SECONDS without a request, and DANGOL_SESSION_ABSOLUTE_SECONDS after the login."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = int(time.time())
            session = request.session
            login_at = session.setdefault(LOGIN_AT, now)
            seen_at = session.get(SEEN_AT, now)
            idle = now - seen_at > settings.DANGOL_SESSION_IDLE_SECONDS
            too_old = now - login_at > settings.DANGOL_SESSION_ABSOLUTE_SECONDS
            if idle or too_old:
                logout(request)
                if request.path.startswith("/api/"):
                    return self.get_response(request)  # now anonymous: the API answers 401
                messages.info(request, _("Your session has expired. Please log in again."))
                return redirect(f"{reverse('web:login')}?{urlencode({'next': request.get_full_path()})}")
            if now - seen_at >= SEEN_WRITE_EVERY or SEEN_AT not in session:
                session[SEEN_AT] = now
        return self.get_response(request)


class TwoFactorMiddleware:
    """With DANGOL_2FA_REQUIRED, an admin or manager who has only given a password is sent to the second step:
    the code of their authenticator app, or the enrolment of one first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (getattr(settings, "DANGOL_2FA_REQUIRED", False) and user is not None and user.is_authenticated
                and needs_two_factors(user) and not user.is_verified()
                and not request.path.startswith(TWO_FACTOR_EXEMPT_PREFIXES)):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": _("Confirm your login with the code of your authenticator app first."),
                                     "code": "two_factor_required", "errors": {}}, status=403)
            from django_otp import user_has_device

            target = "web:two_factor_verify" if user_has_device(user, confirmed=True) else "web:two_factor_setup"
            return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
