"""``Authorization: Bearer <token>`` for integration tokens (``dgl_…``, scoped) and the older per-user tokens."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from .tokens import TOKEN_PREFIX, token_for_key


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's token authentication with the standard ``Authorization: Bearer <token>`` header.

    ``request.auth`` is an ``ApiToken`` for integration tokens (scopes and rate apply) and DRF's ``Token`` for the
    per-user tokens of ``dangol token create --user`` (they act as their user, with every scope)."""

    keyword = "Bearer"

    def authenticate_credentials(self, key):
        if key.startswith(TOKEN_PREFIX):
            token = token_for_key(key)
            if token is None or not token.user.is_active:
                raise exceptions.AuthenticationFailed(_("Invalid token."))
            return token.user, token
        return super().authenticate_credentials(key)
