"""HMAC-SHA256 signatures of webhook bodies: Dangol's outbound format, and a verifier for inbound provider webhooks.

Outbound (``dangol.api.webhooks``) — the header ``Dangol-Signature`` is

    t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

A receiver recomputes the HMAC over the timestamp, a dot and the raw request body (bytes as received), compares in
constant time, and refuses timestamps older than a few minutes (replays). During a secret rotation the header may
carry several ``v1=`` values: any one matching is enough.

Inbound (used by ``dangol.messaging`` for SMS/Kakao/email provider callbacks): ``verify_hmac`` checks a provider's
plain HMAC of the body (hex or base64), and ``verify_dangol_signature`` the format above. Both compare in constant
time and never raise on malformed input: they answer False.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

SIGNATURE_HEADER = "Dangol-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _body(body: str | bytes) -> bytes:
    return body.encode() if isinstance(body, str) else body


def compute(secret: str | bytes, timestamp: int, body: str | bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"``."""
    return hmac.new(_key(secret), str(int(timestamp)).encode() + b"." + _body(body), hashlib.sha256).hexdigest()


def signature_header(secret: str | bytes, body: str | bytes, *, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={timestamp},v1={compute(secret, timestamp, body)}"


def parse_header(header: str) -> tuple[int | None, list[str]]:
    timestamp, signatures = None, []
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    return timestamp, signatures


def verify_dangol_signature(secret: str | bytes, body: str | bytes, header: str, *,
                            tolerance: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its timestamp is within ``tolerance`` seconds of now."""
    timestamp, signatures = parse_header(header)
    if timestamp is None or not signatures:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = compute(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


def verify_hmac(secret: str | bytes, body: str | bytes, signature: str, *, encoding: str = "hex",
                digest=hashlib.sha256, prefix: str = "") -> bool:
    """A provider's HMAC of the raw body: ``signature`` in ``hex`` or ``base64``, optionally after ``prefix``
    (e.g. ``"sha256="``). Constant-time; False for anything malformed."""
    if not signature or not isinstance(signature, str):
        return False
    if prefix:
        if not signature.startswith(prefix):
            return False
        signature = signature[len(prefix):]
    mac = hmac.new(_key(secret), _body(body), digest).digest()
    try:
        given = bytes.fromhex(signature) if encoding == "hex" else base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(mac, given)
