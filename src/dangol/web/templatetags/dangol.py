from django import template

from dangol.core.masking import mask_email, mask_name
from dangol.core.phones import display_phone, mask_phone

register = template.Library()


@register.filter
def masked_phone(value: str) -> str:
    return mask_phone(value) if value else ""


@register.filter
def full_phone(value: str) -> str:
    return display_phone(value) if value else ""


@register.filter
def masked_email(value: str) -> str:
    return mask_email(value) if value else ""


@register.filter
def masked_name(value: str) -> str:
    return mask_name(value)


@register.filter
def won(value) -> str:
    """12,345원 — amounts are integer KRW."""
    if value is None or value == "":
        return ""
    return f"{int(value):,}원"


@register.simple_tag
def primary_phone(customer) -> str:
    contacts = getattr(customer, "primary_contacts", None)
    if contacts is None:
        contacts = [c for c in customer.contacts.all() if c.is_primary]
    return next((c.value for c in contacts if c.kind == "phone"), "")


@register.filter
def consent_method(value: str) -> str:
    """The label of a consent method chosen in the form (stored as its fixed key); other text as it was written."""
    from dangol.web.forms import CONSENT_METHODS

    return str(dict(CONSENT_METHODS).get(value, value))
