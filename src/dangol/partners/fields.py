"""The personal data items an agreement may allow, and how each is read for an export (one SQL expression each, so
that an export is one query)."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# key -> (label, SQL over customers_customer c)
FIELDS: dict[str, tuple] = {
    "name": (_("Name"), "c.name"),
    "phone": (_("Mobile phone"), "(SELECT cp.value FROM customers_contactpoint cp WHERE cp.customer_id = c.id AND cp.kind = 'phone' "
                                 "ORDER BY cp.is_primary DESC, cp.id LIMIT 1)"),
    "email": (_("Email"), "(SELECT cp.value FROM customers_contactpoint cp WHERE cp.customer_id = c.id AND cp.kind = 'email' "
                          "ORDER BY cp.is_primary DESC, cp.id LIMIT 1)"),
    "gender": (_("Gender"), "c.gender"),
    "joined_at": (_("Joined"), "c.joined_at"),
    "member_number": (_("Member number"), "(SELECT a.member_number FROM loyalty_account a WHERE a.customer_id = c.id)"),
    "tier": (_("Tier"), "(SELECT t.name FROM loyalty_account a JOIN loyalty_tier t ON t.id = a.tier_id WHERE a.customer_id = c.id)"),
}
FIELD_CHOICES = [(key, label) for key, (label, _sql) in FIELDS.items()]
