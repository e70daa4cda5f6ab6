"""The second factor of a login (TOTP authenticator apps, django-otp) and the account's security page.

After the password, an admin or manager with a confirmed device is asked for the 6-digit code of their app
(``two_factor_verify``); one without a device enrols first (``two_factor_setup``: a QR code to scan, then a code to
confirm it). ``dangol.web.security.TwoFactorMiddleware`` sends them there while DANGOL_2FA_REQUIRED is on.
"""
from __future__ import annotations

import base64
import io

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from django_otp import devices_for_user, login as otp_login, user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from dangol.core import audit
from dangol.core.audit import Actor
from dangol.core.permissions import needs_two_factors


class CodeForm(forms.Form):
    code = forms.RegexField(label=gettext_lazy("Code from your authenticator app"), regex=r"^\s*\d{6}\s*$",
                            error_messages={"invalid": gettext_lazy("Enter the 6 digits your app shows.")})

    def clean_code(self) -> str:
        return self.cleaned_data["code"].strip()


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return reverse("web:home")


def _pending_device(user) -> TOTPDevice:
    """The device being enrolled: one unconfirmed TOTP device per account, made on the first visit."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or TOTPDevice.objects.create(user=user, name=_("Authenticator app"), confirmed=False)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def two_factor_setup(request):
    if user_has_device(request.user, confirmed=True) and not request.user.is_verified():
        return redirect(f"{reverse('web:two_factor_verify')}?next={_next_url(request)}")
    device = _pending_device(request.user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not device.verify_is_allowed()[0]:
            form.add_error("code", _("Too many wrong codes. Wait a moment before trying again."))
        elif device.verify_token(form.cleaned_data["code"]):
            TOTPDevice.objects.filter(user=request.user, confirmed=True).exclude(pk=device.pk).delete()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            audit.record(actor=Actor.from_request(request), action="two_factor.enrol", obj=request.user)
            messages.success(request, _("Two-factor authentication is on. You will be asked for a code at each login."))
            return redirect(_next_url(request))
        else:
            form.add_error("code", _("This code is not right. Check the time of your phone and try the next code."))
    secret = base64.b32encode(device.bin_key).decode()
    return render(request, "web/security/two_factor_setup.html", {
        "form": form, "secret": " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)), "next": _next_url(request),
        "required": needs_two_factors(request.user),
    })


@never_cache
@login_required
@require_GET
def two_factor_qr(request):
    """The enrolment QR code as SVG, served from the app (the page's CSP allows no data from elsewhere)."""
    device = _pending_device(request.user)
    buffer = io.BytesIO()
    segno.make(device.config_url, error="m").save(buffer, kind="svg", scale=5, dark="#111", light="#fff", xmldecl=False)
    return HttpResponse(buffer.getvalue(), content_type="image/svg+xml")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def two_factor_verify(request):
    if request.user.is_verified():
        return redirect(_next_url(request))
    if not user_has_device(request.user, confirmed=True):
        return redirect(f"{reverse('web:two_factor_setup')}?next={_next_url(request)}")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        for device in devices_for_user(request.user, confirmed=True):
            allowed, _why = device.verify_is_allowed()
            if not allowed:
                form.add_error("code", _("Too many wrong codes. Wait a moment before trying again."))
                break
            if device.verify_token(form.cleaned_data["code"]):
                otp_login(request, device)
                return redirect(_next_url(request))
        else:
            audit.record(actor=Actor.from_request(request), action="two_factor.failed", obj=request.user)
            form.add_error("code", _("This code is not right."))
    return render(request, "web/security/two_factor_verify.html", {"form": form, "next": _next_url(request)})


@never_cache
@login_required
@require_GET
def security_overview(request):
    return render(request, "web/security/overview.html", {
        "has_device": user_has_device(request.user, confirmed=True),
        "required": needs_two_factors(request.user),
    })


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change, checked by AUTH_PASSWORD_VALIDATORS (length, common, numeric, like the username)."""

    template_name = "web/security/password_change.html"
    success_url = reverse_lazy("web:security")

    def form_valid(self, form):
        response = super().form_valid(form)
        audit.record(actor=Actor.from_request(self.request), action="password.change", obj=self.request.user)
        messages.success(self.request, _("Your password has been changed."))
        return response
