"""Masking of names and emails for lists (홍*동, h***@example.com)."""
from __future__ import annotations


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
