"""Scopes of integration tokens: which resource an endpoint belongs to, and whether the token may read or write it.

A view may name its scope (``required_scope = "points:write"``, or a dict per HTTP method); otherwise the scope is
read from the path: ``…/points…`` → points, ``…/coupons…`` → coupons, ``…/consents…`` → consents, ``…/orders…`` →
orders, otherwise the first segment after ``/api/v1/`` (``customers``, ``segments``, ``campaigns``, ``cases``…).
GET/HEAD/OPTIONS need ``<resource>:read``, other methods ``<resource>:write``. Per-user tokens and sessions are not
limited by scopes (the role and units of the account apply, as for every request).
"""
from __future__ import annotations

import re

from django.utils.translation import gettext as _
from rest_framework.permissions import SAFE_METHODS, BasePermission

from .models import ApiToken

# Checked in order: the first pattern found in the path decides the resource.
PATH_RESOURCES = [
    (re.compile(r"/points(/|$)|^loyalty/"), "points"),
    (re.compile(r"/coupons(/|$)|^coupons(/|$)"), "coupons"),
    (re.compile(r"/consents(/|$)|^consents(/|$)"), "consents"),
    (re.compile(r"/orders(/|$)|^orders(/|$)"), "orders"),
    (re.compile(r"/referral(/|$)"), "points"),
]


def resource_of(path: str) -> str:
    rest = path.split("/api/v1/", 1)[-1].lstrip("/")
    for pattern, resource in PATH_RESOURCES:
        if pattern.search(rest):
            return resource
    return rest.split("/", 1)[0] or "api"


def required_scope(request, view) -> str:
    declared = getattr(view, "required_scope", None)
    if isinstance(declared, dict):
        declared = declared.get(request.method)
    if declared:
        return declared
    action = "read" if request.method in SAFE_METHODS else "write"
    return f"{resource_of(request.path)}:{action}"


class TokenScopes(BasePermission):
    message = _("This API token does not have the scope this endpoint needs.")

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        scope = required_scope(request, view)
        if token.has_scope(scope):
            return True
        self.message = _("This API token does not have the scope “%(scope)s”.") % {"scope": scope}
        return False
