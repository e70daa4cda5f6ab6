"""Encryption at rest of sensitive fields (notes flagged sensitive…), with Fernet keys from the environment.

``DANGOL_FIELD_KEYS`` holds one or more Fernet keys, comma-separated: the first encrypts, every one decrypts
(MultiFernet), so a key is rotated by putting a new one first, running ``dangol privacy rotate-keys`` (which
re-encrypts every value with the first key) and then dropping the old one. Without keys, development and the demo
derive one from SECRET_KEY and warn; production (``DANGOL_ENV=production``) refuses to start (see core.checks).

A column holds the Fernet token (text starting ``gAAAAA``); the database never sees the plain value, so it cannot be
searched or sorted by it — only fields nobody searches are encrypted.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import warnings

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

logger = logging.getLogger("dangol.crypto")

TOKEN_PREFIX = "gAAAAA"  # every Fernet token starts so (version byte 0x80 + timestamp)


class DerivedKeyWarning(UserWarning):
    """No DANGOL_FIELD_KEYS: a key derived from SECRET_KEY is used (fine for the demo, not for production)."""


_cache: dict[tuple, MultiFernet] = {}
_warned = False


def configured_keys() -> list[str]:
    raw = getattr(settings, "DANGOL_FIELD_KEYS", "") or ""
    return [key.strip() for key in raw.split(",") if key.strip()]


def derived_key(secret: str) -> str:
    """A Fernet key from SECRET_KEY (development and demo only): changing SECRET_KEY makes old values unreadable."""
    digest = hashlib.sha256(b"dangol-field-encryption:" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def keys() -> list[str]:
    found = configured_keys()
    if found:
        return found
    if getattr(settings, "DANGOL_ENV", "development") == "production":
        raise ImproperlyConfigured("Set DANGOL_FIELD_KEYS (Fernet keys, comma-separated) to encrypt sensitive fields.")
    global _warned
    if not _warned:
        _warned = True
        warnings.warn("DANGOL_FIELD_KEYS is not set: sensitive fields are encrypted with a key derived from SECRET_KEY.",
                      DerivedKeyWarning, stacklevel=3)
    return [derived_key(settings.SECRET_KEY)]


def fernet() -> MultiFernet:
    current = tuple(keys())
    box = _cache.get(current)
    if box is None:
        try:
            box = MultiFernet([Fernet(key.encode()) for key in current])
        except (ValueError, TypeError) as exc:
            # Never echo the key itself.
            raise ImproperlyConfigured("DANGOL_FIELD_KEYS holds a value that is not a Fernet key "
                                       "(32 url-safe base64-encoded bytes, e.g. from Fernet.generate_key()).") from exc
        _cache.clear()
        _cache[current] = box
    return box


def encrypt(text: str) -> str:
    return fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured("An encrypted value cannot be read with the keys in DANGOL_FIELD_KEYS: "
                                   "was a key removed before `dangol privacy rotate-keys` ran?") from exc


def rotate(token: str) -> str:
    """The same value encrypted with the first key (unchanged plaintext, new token)."""
    return fernet().rotate(token.encode()).decode()


def generate_key() -> str:
    return Fernet.generate_key().decode()


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; empty stays empty (an empty note needs no secret).

    Lookups other than ``isnull`` and equality with "" make no sense on ciphertext; do not filter on the value."""

    description = "Text encrypted at rest (Fernet)"

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return decrypt(value)

    def to_python(self, value):
        if isinstance(value, str) and value.startswith(TOKEN_PREFIX):
            try:
                return decrypt(value)
            except ImproperlyConfigured:
                return value
        return value


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) stored encrypted, for the key rotation."""
    from django.apps import apps

    return [(model, field.name) for model in apps.get_models() for field in model._meta.concrete_fields
            if isinstance(field, EncryptedTextField)]
