"""Parse API input into the services' dataclasses and render output. Types and shapes only: the rules of what
a valid customer or order is live in the services, which report through ValidationError."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dangol.core.masking import mask_email, mask_name
from dangol.core.phones import mask_phone, try_normalize_phone
from dangol.customers.models import AnniversaryKind, Channel, ContactKind, Gender, Purpose, Stage
from dangol.customers.services import ConsentInput, CustomerInput, DateParts
from dangol.sales.models import Order, OrderLine, SalesChannel
from dangol.sales.services import LineInput

MAX_ID = 2**63 - 1  # ids beyond a bigint are not ids; reject them before they reach the database


class StrictSerializer(serializers.Serializer):
    """Rejects keys it does not know: a misspelt field must not be silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: [_("Unknown field.")] for key in unknown})
        return super().to_internal_value(data)


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO-8601 date-time kept as given: a time without its offset reaches the service naive, which refuses it,
    instead of being silently read as Seoul time."""

    def enforce_timezone(self, value):
        return value


# ---- errors (documentation of the shape built by dangol.api.errors) ----

class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   help_text="Messages per field; nested fields are dotted (lines.0.quantity).")


class DuplicatesSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), help_text="Matching customers you may see.")
    elsewhere = serializers.IntegerField(help_text="Matching customers in business units you cannot see.")


class DuplicatePhoneErrorSerializer(ErrorSerializer):
    duplicates = DuplicatesSerializer()


# ---- customers: input ----

class DatePartsSerializer(StrictSerializer):
    year = serializers.IntegerField(required=False, allow_null=True, help_text="Omit when unknown.")
    month = serializers.IntegerField(min_value=1, max_value=12)
    day = serializers.IntegerField(min_value=1, max_value=31)
    is_lunar = serializers.BooleanField(default=False, help_text="A date of the Korean lunar calendar (음력).")
    is_leap_month = serializers.BooleanField(default=False, help_text="Lunar leap month (윤달).")


class ConsentInSerializer(StrictSerializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    purpose = serializers.ChoiceField(choices=Purpose.choices, default=Purpose.MARKETING)
    granted = serializers.BooleanField()


class CustomerWriteSerializer(StrictSerializer):
    """PATCH body: every field optional; the given ones replace the current values."""

    name = serializers.CharField(required=False, allow_blank=True)
    phone = serializers.CharField(required=False, allow_blank=True,
                                  help_text="Any common format: 010-1234-5678, 01012345678, +82 10-1234-5678.")
    email = serializers.CharField(required=False, allow_blank=True)
    gender = serializers.ChoiceField(choices=Gender.choices, required=False, allow_blank=True)
    stage = serializers.ChoiceField(choices=Stage.choices, required=False)
    sido = serializers.CharField(required=False, allow_blank=True, help_text="Province (시/도), full or short form: 서울, 서울특별시.")
    sigungu = serializers.CharField(required=False, allow_blank=True, help_text="District (시/군/구).")
    address_line = serializers.CharField(required=False, allow_blank=True)
    postal_code = serializers.CharField(required=False, allow_blank=True, help_text="Five digits.")
    birthday = DatePartsSerializer(required=False, allow_null=True, help_text="null removes it.")
    wedding = DatePartsSerializer(required=False, allow_null=True, help_text="Wedding anniversary; null removes it.")
    tags = serializers.ListField(child=serializers.CharField(), required=False, help_text="Replaces all tags.")
    consents = serializers.ListField(child=ConsentInSerializer(), required=False,
                                     help_text="Consents given or withdrawn now; channels not listed keep their state.")
    consent_method = serializers.CharField(required=False, allow_blank=True, max_length=60,
                                           help_text="How the consents were collected, e.g. web checkbox.")
    consent_evidence = serializers.CharField(required=False, allow_blank=True,
                                             help_text="The notice text or form version the customer agreed to.")
    unit = serializers.SlugField(required=False, max_length=40,
                                 help_text="Code of your business unit where this happens; may be omitted when you have one.")
    allow_duplicate = serializers.BooleanField(default=False, help_text="Save even if another customer has this phone number.")


class CustomerCreateSerializer(CustomerWriteSerializer):
    name = serializers.CharField(allow_blank=True)


PROFILE_FIELDS = [f.name for f in dataclasses.fields(CustomerInput)]


def customer_input(validated: dict, base: CustomerInput | None = None) -> CustomerInput:
    """The given profile fields over ``base`` (the current state for a PATCH, the defaults for a POST)."""
    data = dataclasses.replace(base) if base is not None else CustomerInput(name="")
    for key in PROFILE_FIELDS:
        if key in validated:
            value = validated[key]
            if key in ("birthday", "wedding") and value is not None:
                value = DateParts(**value)
            setattr(data, key, value)
    return data


def consent_inputs(validated: dict) -> list[ConsentInput] | None:
    if "consents" not in validated:
        return None
    return [ConsentInput(channel=c["channel"], purpose=c["purpose"], granted=c["granted"]) for c in validated["consents"]]


PHONE_HELP = "A full phone number in any common format (010-1234-5678, 01012345678, +82 10-1234-5678)."


def _e164_or_error(value: str) -> str:
    e164 = try_normalize_phone(value)
    if e164 is None:
        raise serializers.ValidationError(_("“%(value)s” is not a phone number.") % {"value": value})
    return e164


class CustomerFilterSerializer(serializers.Serializer):
    """Query parameters of the customer list; all optional and combined with AND."""

    q = serializers.CharField(required=False, allow_blank=True, max_length=100, help_text="Part of the name.")
    phone = serializers.CharField(required=False, allow_blank=True, max_length=40, help_text=PHONE_HELP)
    last4 = serializers.RegexField(r"^\d{4}$", required=False, allow_blank=True, help_text="Last four digits of a phone number.")
    stage = serializers.ChoiceField(choices=Stage.choices, required=False, allow_blank=True)
    unit = serializers.SlugField(required=False, allow_blank=True, max_length=40,
                                 help_text="Code of a business unit the customer belongs to.")
    tag = serializers.CharField(required=False, allow_blank=True, max_length=40)

    def validate_phone(self, value: str) -> str:
        return _e164_or_error(value) if value.strip() else ""


class PhoneLookupSerializer(serializers.Serializer):
    phone = serializers.CharField(max_length=40, help_text=PHONE_HELP)

    def validate_phone(self, value: str) -> str:
        return _e164_or_error(value)


# ---- customers: output ----

class ContactSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ContactKind.choices)
    value = serializers.CharField(help_text="Masked unless `contacts_masked` is false.")
    label = serializers.CharField()
    is_primary = serializers.BooleanField()


class DatePartsOutSerializer(serializers.Serializer):
    year = serializers.IntegerField(allow_null=True)
    month = serializers.IntegerField()
    day = serializers.IntegerField()
    is_lunar = serializers.BooleanField()
    is_leap_month = serializers.BooleanField()


class ConsentStateSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    purpose = serializers.ChoiceField(choices=Purpose.choices)
    granted = serializers.BooleanField()
    at = serializers.DateTimeField(allow_null=True, help_text="When it was last given or withdrawn; null if never asked.")
    source = serializers.CharField(help_text="Where it was recorded (store, web, api…); empty if never asked.")


def _primary(contacts, kind: str) -> str:
    return next((c.value for c in contacts if c.kind == kind and c.is_primary), "")


def _mask(kind: str, value: str) -> str:
    if not value:
        return ""
    return mask_phone(value) if kind == ContactKind.PHONE else mask_email(value)


class CustomerListItemSerializer(serializers.Serializer):
    """A list row: name and contacts always masked. Needs ``with_list_columns`` plus the tags prefetched."""

    id = serializers.IntegerField()
    name = serializers.SerializerMethodField(help_text="Masked: 김*늘.")
    phone = serializers.SerializerMethodField(help_text="Primary phone, masked: 010-****-5678.")
    email = serializers.SerializerMethodField(help_text="Primary email, masked.")
    stage = serializers.ChoiceField(choices=Stage.choices)
    home_unit = serializers.SerializerMethodField(help_text="Code of the unit where the customer registered.")
    sido = serializers.SerializerMethodField()
    sigungu = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    joined_at = serializers.DateTimeField()

    def get_name(self, obj) -> str:
        return mask_name(obj.name)

    def get_phone(self, obj) -> str:
        return _mask(ContactKind.PHONE, obj.primary_phone or "")

    def get_email(self, obj) -> str:
        return _mask(ContactKind.EMAIL, obj.primary_email or "")

    def get_sido(self, obj) -> str:
        return obj.region_sido or ""

    def get_sigungu(self, obj) -> str:
        return obj.region_sigungu or ""

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, obj):
        if hasattr(obj, "tag_names"):
            return obj.tag_names
        return [tag.name for tag in obj.tags.all()]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_home_unit(self, obj):
        if hasattr(obj, "home_unit_code"):
            return obj.home_unit_code
        return obj.home_unit.code if obj.home_unit_id else None


class CustomerDetailSerializer(serializers.Serializer):
    """The profile. Context: ``reveal_contacts`` (bool) and ``consents`` (``consent_overview`` rows)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    gender = serializers.ChoiceField(choices=Gender.choices)
    stage = serializers.ChoiceField(choices=Stage.choices)
    home_unit = serializers.CharField(source="home_unit.code", allow_null=True, read_only=True,
                                      help_text="Code of the unit where the customer registered.")
    units = serializers.SerializerMethodField(help_text="Codes of the business units that know the customer.")
    joined_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    contacts_masked = serializers.SerializerMethodField(help_text="True when phone numbers and emails are masked (staff).")
    phone = serializers.SerializerMethodField(help_text="Primary phone: E.164 (+821012345678) or masked.")
    email = serializers.SerializerMethodField(help_text="Primary email, or masked.")
    contacts = serializers.SerializerMethodField(help_text="Every phone number and email on file.")
    sido = serializers.SerializerMethodField()
    sigungu = serializers.SerializerMethodField()
    address_line = serializers.SerializerMethodField()
    postal_code = serializers.SerializerMethodField()
    birthday = serializers.SerializerMethodField()
    wedding = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    consents = serializers.SerializerMethodField(help_text="The consent in force per channel and purpose.")

    def _reveal(self) -> bool:
        return bool(self.context.get("reveal_contacts"))

    def _shown(self, kind: str, value: str) -> str:
        return value if self._reveal() else _mask(kind, value)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_units(self, obj):
        return sorted(m.unit.code for m in obj.memberships.all())

    def get_contacts_masked(self, obj) -> bool:
        return not self._reveal()

    def get_phone(self, obj) -> str:
        return self._shown(ContactKind.PHONE, _primary(obj.contacts.all(), ContactKind.PHONE))

    def get_email(self, obj) -> str:
        return self._shown(ContactKind.EMAIL, _primary(obj.contacts.all(), ContactKind.EMAIL))

    @extend_schema_field(ContactSerializer(many=True))
    def get_contacts(self, obj):
        return [{"kind": c.kind, "value": self._shown(c.kind, c.value), "label": c.label, "is_primary": c.is_primary}
                for c in obj.contacts.all()]

    def _address(self, obj):
        return next((a for a in obj.addresses.all() if a.is_primary), None)

    def get_sido(self, obj) -> str:
        return getattr(self._address(obj), "sido", "")

    def get_sigungu(self, obj) -> str:
        return getattr(self._address(obj), "sigungu", "")

    def get_address_line(self, obj) -> str:
        return getattr(self._address(obj), "line", "")

    def get_postal_code(self, obj) -> str:
        return getattr(self._address(obj), "postal_code", "")

    def _anniversary(self, obj, kind: str):
        record = next((a for a in obj.anniversaries.all() if a.kind == kind), None)
        if record is None:
            return None
        return {"year": record.year, "month": record.month, "day": record.day, "is_lunar": record.is_lunar,
                "is_leap_month": record.is_leap_month}

    @extend_schema_field(DatePartsOutSerializer(allow_null=True))
    def get_birthday(self, obj):
        return self._anniversary(obj, AnniversaryKind.BIRTHDAY)

    @extend_schema_field(DatePartsOutSerializer(allow_null=True))
    def get_wedding(self, obj):
        return self._anniversary(obj, AnniversaryKind.WEDDING)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, obj):
        return sorted(tag.name for tag in obj.tags.all())

    @extend_schema_field(ConsentStateSerializer(many=True))
    def get_consents(self, obj):
        rows = [{"channel": row["channel"], "purpose": row["purpose"], "granted": bool(row["record"] and row["record"].granted),
                 "at": row["record"].at if row["record"] else None, "source": row["record"].source if row["record"] else ""}
                for row in self.context.get("consents", [])]
        return ConsentStateSerializer(rows, many=True).data


# ---- orders ----

class OrderLineInSerializer(StrictSerializer):
    product = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Product id; sold at the order's unit.")
    quantity = serializers.IntegerField()
    unit_price = serializers.IntegerField(required=False, allow_null=True, help_text="KRW; omit for the list price.")


class OrderCreateSerializer(StrictSerializer):
    unit = serializers.SlugField(max_length=40, help_text="Code of your business unit that sold.")
    customer = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Customer id.")
    channel = serializers.ChoiceField(choices=SalesChannel.choices, default=SalesChannel.STORE)
    ordered_at = AwareDateTimeField(required=False,
                                    help_text="ISO-8601 with its offset, e.g. 2025-05-01T14:30:00+09:00; default now.")
    external_ref = serializers.CharField(required=False, allow_blank=True, max_length=60, help_text="The till's receipt number.")
    lines = serializers.ListField(child=OrderLineInSerializer())

    def line_inputs(self) -> list[LineInput]:
        return [LineInput(product_id=line["product"], quantity=line["quantity"], unit_price=line.get("unit_price"))
                for line in self.validated_data["lines"]]


class OrderLineSerializer(serializers.ModelSerializer):
    product_name = serializers.CharField(source="product.name", read_only=True)
    sku = serializers.CharField(source="product.sku", read_only=True)

    class Meta:
        model = OrderLine
        fields = ["id", "product", "product_name", "sku", "quantity", "unit_price", "line_total"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    """A sale, or a refund (negative quantities and total) pointing at its sale in ``refund_of``."""

    unit = serializers.SlugRelatedField(slug_field="code", read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = ["id", "kind", "unit", "customer", "refund_of", "channel", "ordered_at", "total", "external_ref", "lines"]
        read_only_fields = fields

