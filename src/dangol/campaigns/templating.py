"""Message templates in a sandbox: ``{{ name }}`` placeholders from a fixed list, nothing else.

No template engine is involved: a template is text with placeholders, and rendering is a substitution of strings that
were computed beforehand for each recipient. A placeholder outside ``VARIABLES``, a template tag, a filter or an
attribute lookup (``{{ name.__class__ }}``, ``{{ name|upper }}``, ``{% debug %}``) is refused when the campaign is
saved, so a template can reach nothing but the values handed to it.
"""
from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

VARIABLES = {
    "name": _("the customer's name"),
    "tier": _("their loyalty tier"),
    "points": _("their points balance"),
    "coupon_code": _("the code of their coupon"),
    "coupon_value": _("what the coupon gives (10% / 5,000원)"),
    "coupon_expires": _("the coupon's last day"),
    "best_product": _("the product analytics recommends to them"),
    "unit": _("the sending business unit"),
}
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
ANY_TAG = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")
MAX_LENGTH = 2000


def variables_in(text: str) -> set[str]:
    """The placeholders a template uses; raises ValidationError for anything that is not a known placeholder."""
    text = text or ""
    if len(text) > MAX_LENGTH:
        raise ValidationError(_("A message has at most %(n)s characters.") % {"n": MAX_LENGTH})
    used = set()
    for match in PLACEHOLDER.finditer(text):
        if match.group(1) not in VARIABLES:
            raise ValidationError(_("Unknown placeholder {{ %(name)s }}. Use one of: %(known)s.") % {
                "name": match.group(1), "known": ", ".join(VARIABLES)})
        used.add(match.group(1))
    if ANY_TAG.search(PLACEHOLDER.sub("", text)):
        raise ValidationError(_("Only placeholders such as {{ name }} are allowed: no tags, filters or attributes."))
    return used


def render(text: str, values: dict[str, str]) -> str:
    """The text with each placeholder replaced by its value (missing values become empty)."""
    return PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "")), text or "")
