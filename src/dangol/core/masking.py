"""Masking of personal data for lists, exports and message previews (홍*동, 010-****-5678, h***@example.com).

Lists, exports and previews show masked values by default; full values only to roles that may see them, and every
such view is written to the audit trail (``dangol.core.audit``)."""
from __future__ import annotations

from .phones import mask_phone as _mask_phone


def mask_name(name: str) -> str:
    name = (name or "").strip()
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    if " " in name:  # Latin-script names: keep the initials of each word
        return " ".join(part[0] + "*" * (len(part) - 1) for part in name.split())
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_email(email: str) -> str:
    local, sep, domain = (email or "").partition("@")
    if not sep:
        return mask_name(email)
    return (local[:1] + "***" if local else "***") + "@" + domain


def mask_phone(e164: str) -> str:
    """010-****-5678 (the middle group hidden, the last four digits kept for the counter); empty stays empty."""
    return _mask_phone(e164) if e164 else ""


def mask_contact(kind: str, value: str) -> str:
    """A contact point's value masked by its kind ("phone" or "email")."""
    return mask_phone(value) if kind == "phone" else mask_email(value)


def mask_address(line: str) -> str:
    """A street address: only its first word (the road or the 동), the rest hidden."""
    words = (line or "").split()
    if not words:
        return ""
    return words[0] + (" ***" if len(words) > 1 else "")
