"""Rate limits per API token, counted in Django's cache (shared by every web process when DANGOL_CACHE_URL points at
Redis; per process otherwise). An integration token may have its own rate (``ApiToken.rate``)."""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiToken

PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate_or_error(rate: str) -> tuple[int, int]:
    count, _sep, period = (rate or "").partition("/")
    if not count.strip().isdigit() or period.strip() not in PERIODS or int(count) < 1:
        raise ValidationError({"rate": [_("Write the rate as requests/period, e.g. 600/min (periods: s, min, hour, day).")]})
    return int(count), PERIODS[period.strip()]


class TokenRateThrottle(SimpleRateThrottle):
    """One bucket per integration token, per per-user token, or per logged-in account."""

    scope = "token"

    def __init__(self):
        pass  # the rate depends on the request's token: set in allow_request

    def parse_rate(self, rate):
        if rate is None:
            return (None, None)
        return parse_rate_or_error(rate)

    def allow_request(self, request, view):
        token = request.auth
        if isinstance(token, ApiToken) and token.rate:
            self.rate = token.rate
        else:
            self.rate = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(self.scope) \
                or settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get("user")
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        token = request.auth
        if isinstance(token, ApiToken):
            ident = f"t{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"u{request.user.pk}"
        else:
            ident = f"ip{self.get_ident(request)}"
        return f"dangol-throttle:{ident}"
