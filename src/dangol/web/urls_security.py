"""Account security pages: the second factor and the password (security-api)."""
from django.contrib.auth.decorators import login_required
from django.urls import path

from . import views_security as views

urlpatterns = [
    path("security/", views.security_overview, name="security"),
    path("security/password/", login_required(views.PasswordChangeView.as_view()), name="password_change"),
    path("security/2fa/setup/", views.two_factor_setup, name="two_factor_setup"),
    path("security/2fa/qr.svg", views.two_factor_qr, name="two_factor_qr"),
    path("security/2fa/verify/", views.two_factor_verify, name="two_factor_verify"),
]
