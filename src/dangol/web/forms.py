"""Forms of the staff app: they parse and label input; the services validate and write."""
from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from dangol.core.phones import display_phone
from dangol.core.regions import SIDO_NAMES
from dangol.customers.models import Channel, ConsentSource, Gender, InteractionKind, Purpose, Stage
from dangol.customers.services import ConsentInput, CustomerInput, DateParts, clean_customer_input

CONSENT_METHODS = [
    ("signed paper form", _("Signed paper form")),
    ("verbal at the counter", _("Verbal, at the counter")),
    ("phone call, recorded", _("Phone call, recorded")),
    ("web form checkbox", _("Web form checkbox")),
]
DEFAULT_EVIDENCE = "마케팅 정보 수신 동의서 v1 (광고성 정보 수신 목적, 보유기간: 동의 철회 시까지)"


def consent_field_name(channel: str, purpose: str) -> str:
    return f"consent_{channel}_{purpose}"


class CustomerForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    phone = forms.CharField(label=_("Mobile phone"), max_length=30, required=False,
                            widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off", "placeholder": "010-1234-5678"}))
    email = forms.CharField(label=_("Email"), max_length=254, required=False,
                            widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    gender = forms.ChoiceField(label=_("Gender"), choices=Gender.choices, required=False)
    stage = forms.ChoiceField(label=_("Relationship stage"), choices=Stage.choices, initial=Stage.PROSPECT)
    sido = forms.ChoiceField(label=_("Province (시/도)"), choices=[("", "—")] + [(n, n) for n in SIDO_NAMES], required=False)
    sigungu = forms.CharField(label=_("District (시/군/구)"), max_length=30, required=False)
    address_line = forms.CharField(label=_("Street address"), max_length=200, required=False)
    postal_code = forms.CharField(label=_("Postal code"), max_length=5, required=False, widget=forms.TextInput(attrs={"inputmode": "numeric"}))
    birth_year = forms.IntegerField(label=_("Birth year"), required=False, min_value=1900, max_value=2100)
    birth_month = forms.IntegerField(label=_("Month"), required=False, min_value=1, max_value=12)
    birth_day = forms.IntegerField(label=_("Day"), required=False, min_value=1, max_value=31)
    birth_lunar = forms.BooleanField(label=_("Lunar calendar (음력)"), required=False)
    birth_leap = forms.BooleanField(label=_("Leap month (윤달)"), required=False)
    wedding_year = forms.IntegerField(label=_("Year"), required=False, min_value=1900, max_value=2100)
    wedding_month = forms.IntegerField(label=_("Month"), required=False, min_value=1, max_value=12)
    wedding_day = forms.IntegerField(label=_("Day"), required=False, min_value=1, max_value=31)
    wedding_lunar = forms.BooleanField(label=_("Lunar calendar (음력)"), required=False)
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Separate with commas"))
    consent_method = forms.ChoiceField(label=_("How was consent given?"), choices=CONSENT_METHODS)
    consent_evidence = forms.CharField(label=_("Notice shown (version)"), initial=DEFAULT_EVIDENCE, max_length=500,
                                       widget=forms.Textarea(attrs={"rows": 2}))
    version = forms.CharField(widget=forms.HiddenInput, required=False)
    confirm_duplicate = forms.BooleanField(label=_("Save anyway: this is a different person with the same phone number"), required=False)

    def __init__(self, *args, units=None, masked_contacts: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # Staff who may not see full contacts edit without them: an empty field keeps the number on file.
        self.masked_contacts = masked_contacts or {}
        for name, masked in self.masked_contacts.items():
            self.fields[name].help_text = _("On file: %(masked)s. Leave empty to keep it.") % {"masked": masked}
            self.fields[name].widget.attrs["placeholder"] = masked
        for channel, channel_label in Channel.choices:
            for purpose, _purpose_label in Purpose.choices:
                self.fields[consent_field_name(channel, purpose)] = forms.BooleanField(label=channel_label, required=False)
        if units is not None:
            self.fields["unit"] = forms.ModelChoiceField(label=_("Registered at"), queryset=units, empty_label=None)
            self.order_fields(["unit"])

    def consent_rows(self):
        """Per channel: the marketing and the night-time field, for the consent table of the template."""
        return [
            {"label": label, "marketing": self[consent_field_name(channel, Purpose.MARKETING)],
             "night": self[consent_field_name(channel, Purpose.NIGHT_MARKETING)]}
            for channel, label in Channel.choices
        ]

    def clean(self):
        data = super().clean()
        for prefix in ("birth", "wedding"):
            parts = [data.get(f"{prefix}_month"), data.get(f"{prefix}_day")]
            if any(p is not None for p in parts) and not all(p is not None for p in parts):
                self.add_error(f"{prefix}_day", _("Give both the month and the day."))
        for channel, _label in Channel.choices:
            if data.get(consent_field_name(channel, Purpose.NIGHT_MARKETING)) and not data.get(consent_field_name(channel, Purpose.MARKETING)):
                self.add_error(consent_field_name(channel, Purpose.NIGHT_MARKETING),
                               _("Night-time advertising needs the advertising consent of the same channel."))
        # Run the service's own validation now, so every bad field is shown at once, next to itself.
        try:
            clean_customer_input(self.to_input())
        except ValidationError as exc:
            self.apply_service_errors(exc, skip_fields_with_errors=True)
        return data

    def to_input(self) -> CustomerInput:
        d = self.cleaned_data
        birthday = None
        if d.get("birth_month") and d.get("birth_day"):
            birthday = DateParts(year=d.get("birth_year"), month=d["birth_month"], day=d["birth_day"],
                                 is_lunar=bool(d.get("birth_lunar")), is_leap_month=bool(d.get("birth_leap")))
        wedding = None
        if d.get("wedding_month") and d.get("wedding_day"):
            wedding = DateParts(year=d.get("wedding_year"), month=d["wedding_month"], day=d["wedding_day"],
                                is_lunar=bool(d.get("wedding_lunar")))
        return CustomerInput(
            name=d.get("name") or "", phone=d.get("phone") or "", email=d.get("email") or "", gender=d.get("gender") or "",
            stage=d.get("stage") or Stage.PROSPECT, sido=d.get("sido") or "", sigungu=d.get("sigungu") or "",
            address_line=d.get("address_line") or "", postal_code=d.get("postal_code") or "", birthday=birthday,
            wedding=wedding, tags=[t for t in (d.get("tags") or "").split(",")],
        )

    def to_consents(self) -> list[ConsentInput]:
        return [ConsentInput(channel, purpose, bool(self.cleaned_data.get(consent_field_name(channel, purpose))))
                for channel, _l in Channel.choices for purpose, _p in Purpose.choices]

    def apply_service_errors(self, exc: ValidationError, skip_fields_with_errors: bool = False) -> None:
        """Show each service error next to its field (birthday errors next to the day)."""
        mapping = {"birthday": "birth_day", "wedding": "wedding_day", "consents": None}
        for key, messages in exc.message_dict.items():
            field = mapping.get(key, key)
            if skip_fields_with_errors and field in self.errors:
                continue
            for message in messages:
                self.add_error(field if field in self.fields else None, message)


def initial_from_customer(customer, consents: dict, *, full_contacts: bool, version: str) -> dict:
    phone = next((display_phone(c.value) for c in customer.contacts.all() if c.kind == "phone" and c.is_primary), "")
    email = next((c.value for c in customer.contacts.all() if c.kind == "email" and c.is_primary), "")
    if not full_contacts:
        phone = email = ""
    address = next((a for a in customer.addresses.all() if a.is_primary), None)
    anniversaries = {a.kind: a for a in customer.anniversaries.all()}
    initial = {
        "name": customer.name, "phone": phone, "email": email, "gender": customer.gender, "stage": customer.stage,
        "tags": ", ".join(t.name for t in customer.tags.all()),
    }
    if address:
        initial.update(sido=address.sido, sigungu=address.sigungu, postal_code=address.postal_code,
                       address_line=address.line if full_contacts else "")
    if birthday := anniversaries.get("birthday"):
        initial.update(birth_year=birthday.year, birth_month=birthday.month, birth_day=birthday.day,
                       birth_lunar=birthday.is_lunar, birth_leap=birthday.is_leap_month)
    if wedding := anniversaries.get("wedding"):
        initial.update(wedding_year=wedding.year, wedding_month=wedding.month, wedding_day=wedding.day, wedding_lunar=wedding.is_lunar)
    for (channel, purpose), granted in consents.items():
        initial[consent_field_name(channel, purpose)] = granted
    initial["version"] = version
    return initial


class NoteForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=[(InteractionKind.NOTE, _("Note")), (InteractionKind.VISIT, _("Visit"))])
    text = forms.CharField(label=_("Text"), max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))


class PreferenceForm(forms.Form):
    topic = forms.CharField(label=_("Topic"), max_length=60)
    value = forms.CharField(label=_("Preference"), max_length=200)


ORDER_LINE_ROWS = 5


class OrderForm(forms.Form):
    """A purchase with up to five lines; empty rows are ignored."""

    unit = forms.ModelChoiceField(label=_("Business unit"), queryset=None, empty_label=None)
    channel = forms.ChoiceField(label=_("Channel"))

    def __init__(self, *args, units, products, channels, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["unit"].queryset = units
        self.fields["channel"].choices = channels
        product_choices = [("", "—")] + [(p.pk, f"{p.unit.name} · {p.name} ({p.price:,}원)") for p in products]
        for i in range(ORDER_LINE_ROWS):
            self.fields[f"product_{i}"] = forms.TypedChoiceField(label=_("Product"), choices=product_choices, coerce=int,
                                                                  required=False, empty_value=None,
                                                                  widget=forms.Select(attrs={"aria-label": _("Product")}))
            self.fields[f"quantity_{i}"] = forms.IntegerField(label=_("Qty"), required=False, min_value=1, max_value=10000,
                                                              widget=forms.NumberInput(attrs={"inputmode": "numeric", "placeholder": _("Qty"), "aria-label": _("Qty")}))
            self.fields[f"price_{i}"] = forms.IntegerField(label=_("Unit price"), required=False, min_value=0,
                                                           widget=forms.NumberInput(attrs={"inputmode": "numeric", "placeholder": _("Unit price"),
                                                                                           "aria-label": _("Unit price")}),
                                                           help_text=_("empty: list price"))

    def line_rows(self):
        return [(self[f"product_{i}"], self[f"quantity_{i}"], self[f"price_{i}"]) for i in range(ORDER_LINE_ROWS)]

    def clean(self):
        data = super().clean()
        lines = []
        for i in range(ORDER_LINE_ROWS):
            product, qty, price = data.get(f"product_{i}"), data.get(f"quantity_{i}"), data.get(f"price_{i}")
            if product is None and qty is None and price is None:
                continue
            if product is None:
                self.add_error(f"product_{i}", _("Choose a product."))
                continue
            lines.append((product, qty or 1, price))
        if not lines and not self.errors:
            raise ValidationError(_("Add at least one product."))
        data["lines"] = lines
        return data
