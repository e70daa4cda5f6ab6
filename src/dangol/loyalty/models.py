"""One loyalty program for the whole group: a points ledger with lots, tiers, a coupon wallet and referrals.

Invariants (checked by ``dangol loyalty check`` and the tests):
- every balance is the sum of a customer's ledger entries; entries are never changed or deleted (a merge moves them
  to the surviving record, an undo moves them back);
- the points a customer can spend are the ``remaining`` of their lots, first to expire first spent; per customer
  ``sum(ledger.points) == sum(lot.remaining) - account.points_owed``;
- whatever changes a lot's ``remaining`` or an account's ``points_owed`` holds the customer's Account row lock
  (SELECT … FOR UPDATE), so concurrent redemptions, reversals and the expiry job take turns per customer.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The kind of the 360° timeline entries this app writes. It is not (yet) one of customers.InteractionKind's choices:
# the lead adds ``LOYALTY = "loyalty", _("Points")`` there; the database column takes it either way.
TIMELINE_KIND = "loyalty"
MAX_RATE_BP = 10_000  # 100 % of the amount
MAX_MULTIPLIER_PCT = 1_000  # ×10


class Program(models.Model):
    """The group's program: one row (pk 1), edited in the admin."""

    name = models.CharField(_("name"), max_length=80, default="Hanbit Members")
    default_rate_bp = models.PositiveIntegerField(
        _("default earn rate (points per 10,000 KRW)"), default=100,
        validators=[MaxValueValidator(MAX_RATE_BP)],
        help_text=_("100 = 1 % of the amount; business units without an earn rule of their own use this"))
    point_value_krw = models.PositiveIntegerField(_("value of a point (KRW)"), default=1, validators=[MinValueValidator(1)])
    validity_months = models.PositiveSmallIntegerField(
        _("validity of points (months)"), default=12, validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text=_("points expire at the end of the day, this many months after they were earned"))
    expiring_soon_days = models.PositiveSmallIntegerField(_("notice before expiry (days)"), default=30,
                                                          validators=[MinValueValidator(1), MaxValueValidator(365)])
    min_redeem_points = models.PositiveIntegerField(_("smallest redemption (points)"), default=100,
                                                    validators=[MinValueValidator(1)])
    tier_basis = models.CharField(_("tiers qualify by"), max_length=8, default="spend",
                                  choices=[("spend", _("spend (KRW)")), ("points", _("points earned"))])
    tier_period_days = models.PositiveSmallIntegerField(_("tier period (days)"), default=365,
                                                        validators=[MinValueValidator(1), MaxValueValidator(3660)],
                                                        help_text=_("the rolling window of spend or points that qualifies for a tier"))
    tier_grace_days = models.PositiveSmallIntegerField(_("grace before a downgrade (days)"), default=90,
                                                       validators=[MaxValueValidator(3660)])
    referral_referrer_points = models.PositiveIntegerField(_("referral reward for the referrer (points)"), default=3000)
    referral_newcomer_points = models.PositiveIntegerField(_("referral reward for the newcomer (points)"), default=2000)
    referral_min_purchase_krw = models.PositiveBigIntegerField(_("qualifying first purchase (KRW)"), default=10_000)
    referral_join_days = models.PositiveSmallIntegerField(
        _("referral code accepted within (days of joining)"), default=30, validators=[MinValueValidator(1)])
    advocate_referrals = models.PositiveSmallIntegerField(
        _("rewarded referrals that make an advocate"), default=1, validators=[MinValueValidator(1)],
        help_text=_("the referrer's relationship stage becomes 'advocate' at this many rewarded referrals"))
    card_link_days = models.PositiveSmallIntegerField(_("member card links valid for (days)"), default=90,
                                                      validators=[MinValueValidator(1), MaxValueValidator(3660)])

    class Meta:
        verbose_name = _("loyalty program")
        verbose_name_plural = _("loyalty program")

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.pk = 1  # one program for the group
        super().save(*args, **kwargs)

    @classmethod
    def current(cls) -> "Program":
        program = cls.objects.filter(pk=1).first()
        if program is None:
            program, _created = cls.objects.get_or_create(pk=1)
        return program


class EarnRule(models.Model):
    """The earn rate of one business unit (units without a rule earn the program's default rate)."""

    unit = models.OneToOneField("core.BusinessUnit", on_delete=models.CASCADE, related_name="earn_rule", verbose_name=_("business unit"))
    rate_bp = models.PositiveIntegerField(_("points per 10,000 KRW"), validators=[MaxValueValidator(MAX_RATE_BP)],
                                          help_text=_("100 = 1 %, 500 = 5 %, 0 = this unit earns nothing"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("earn rule")
        verbose_name_plural = _("earn rules")
        constraints = [models.CheckConstraint(condition=models.Q(rate_bp__lte=MAX_RATE_BP), name="earnrule_rate_range")]

    def __str__(self) -> str:
        return f"{self.unit} {self.rate_bp / 100:g} %"


class CategoryMultiplier(models.Model):
    """Products of this category earn a multiple of the unit's rate (150 = ×1.5)."""

    category = models.OneToOneField("sales.Category", on_delete=models.CASCADE, related_name="earn_multiplier",
                                    verbose_name=_("category"))
    multiplier_pct = models.PositiveIntegerField(_("multiplier (%)"), validators=[MaxValueValidator(MAX_MULTIPLIER_PCT)],
                                                 help_text=_("100 = as usual, 200 = double, 0 = earns nothing"))

    class Meta:
        verbose_name = _("category multiplier")
        verbose_name_plural = _("category multipliers")
        constraints = [models.CheckConstraint(condition=models.Q(multiplier_pct__lte=MAX_MULTIPLIER_PCT),
                                              name="categorymultiplier_range")]

    def __str__(self) -> str:
        return f"{self.category} ×{self.multiplier_pct / 100:g}"


class Promotion(models.Model):
    """A time-limited multiplier (e.g. double points in December at the bakery). Overlapping promotions do not stack:
    a line earns with the largest multiplier that applies to it."""

    name = models.CharField(_("name"), max_length=120)
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("business unit"), help_text=_("empty: every business unit"))
    category = models.ForeignKey("sales.Category", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                 verbose_name=_("category"), help_text=_("empty: every category"))
    multiplier_pct = models.PositiveIntegerField(_("multiplier (%)"), default=200,
                                                 validators=[MinValueValidator(100), MaxValueValidator(MAX_MULTIPLIER_PCT)])
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["-starts_at"]
        verbose_name = _("promotion")
        verbose_name_plural = _("promotions")
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="promotion_ends_after_start"),
            models.CheckConstraint(condition=models.Q(multiplier_pct__gte=100, multiplier_pct__lte=MAX_MULTIPLIER_PCT),
                                   name="promotion_multiplier_range"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("A promotion ends after it starts.")})


class CouponKind(models.TextChoices):
    AMOUNT = "amount", _("Amount off (KRW)")
    PERCENT = "percent", _("Percent off")
    GIFT = "gift", _("Gift (an item or a service)")


class CouponTemplate(models.Model):
    """What a coupon gives; campaigns and tier upgrades issue coupons from a template."""

    name = models.CharField(_("name"), max_length=120)
    description = models.CharField(_("description"), max_length=300, blank=True)
    kind = models.CharField(_("kind"), max_length=8, choices=CouponKind.choices, default=CouponKind.AMOUNT)
    value = models.PositiveIntegerField(_("value"), default=0, help_text=_("KRW off, or percent off; 0 for a gift"))
    min_spend_krw = models.PositiveBigIntegerField(_("minimum spend (KRW)"), default=0)
    valid_days = models.PositiveSmallIntegerField(_("valid for (days)"), default=30, validators=[MinValueValidator(1)])
    units = models.ManyToManyField("core.BusinessUnit", blank=True, related_name="+", verbose_name=_("usable at"),
                                   help_text=_("none: at every business unit"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        constraints = [models.CheckConstraint(condition=~models.Q(kind="percent") | models.Q(value__lte=100),
                                              name="coupontemplate_percent_range")]

    def __str__(self) -> str:
        return self.name

    def usable_units(self) -> list:
        """The units where coupons of this template are accepted, by name ([] = every unit); reads a prefetch of
        ``units`` when there is one."""
        return sorted(self.units.all(), key=lambda u: u.name)

    def usable_at(self, unit) -> bool:
        units = self.usable_units()
        return not units or any(u.pk == unit.pk for u in units)

    @property
    def units_label(self) -> str:
        """"한빛호텔 서울, 한빛호텔 부산", or "" when the coupon is good at every unit."""
        return ", ".join(u.name for u in self.usable_units())


class Tier(models.Model):
    """A membership tier (Silver, Gold, VIP…): reached when the spend or points of the rolling period reach the
    threshold; kept through a grace period when they fall below it."""

    code = models.SlugField(_("code"), max_length=30, unique=True)
    name = models.CharField(_("name"), max_length=60)
    rank = models.PositiveSmallIntegerField(_("rank"), unique=True, help_text=_("higher is better"))
    threshold = models.PositiveBigIntegerField(_("threshold"), help_text=_("KRW spent, or points earned, in the period"))
    earn_multiplier_pct = models.PositiveIntegerField(_("earn multiplier (%)"), default=100,
                                                      validators=[MinValueValidator(100), MaxValueValidator(MAX_MULTIPLIER_PCT)])
    upgrade_coupon = models.ForeignKey(CouponTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                       verbose_name=_("coupon on upgrade"))
    benefits = models.CharField(_("benefits"), max_length=300, blank=True, help_text=_("shown to staff and on the member card"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["rank"]
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        constraints = [models.CheckConstraint(condition=models.Q(earn_multiplier_pct__gte=100, earn_multiplier_pct__lte=MAX_MULTIPLIER_PCT),
                                              name="tier_multiplier_range")]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        # A higher tier needs more: otherwise a customer would qualify for a tier below one they already pass.
        others = Tier.objects.filter(is_active=True).exclude(pk=self.pk)
        if self.rank is not None and self.threshold is not None and self.is_active:
            if others.filter(rank__lt=self.rank, threshold__gte=self.threshold).exists() or \
                    others.filter(rank__gt=self.rank, threshold__lte=self.threshold).exists():
                raise ValidationError({"threshold": _("A higher rank needs a higher threshold than every lower tier.")})


class Account(models.Model):
    """A customer's membership: member number, referral code, tier, and points owed after refunds."""

    customer = models.OneToOneField("customers.Customer", primary_key=True, on_delete=models.CASCADE,
                                    related_name="loyalty_account", verbose_name=_("customer"))
    member_number = models.CharField(_("member number"), max_length=12, unique=True)
    referral_code = models.CharField(_("referral code"), max_length=10, unique=True)
    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts", verbose_name=_("tier"),
                             db_index=False)
    tier_since = models.DateTimeField(_("tier since"), null=True, blank=True)
    downgrade_at = models.DateTimeField(_("downgrade due at"), null=True, blank=True,
                                        help_text=_("set while the customer is below the tier's threshold: the end of the grace period"))
    points_owed = models.BigIntegerField(_("points owed"), default=0,
                                         help_text=_("points of refunded purchases that had already been spent; later earnings pay them off"))
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("loyalty account")
        verbose_name_plural = _("loyalty accounts")
        constraints = [models.CheckConstraint(condition=models.Q(points_owed__gte=0), name="account_points_owed_not_negative")]
        indexes = [models.Index(fields=["customer"], condition=models.Q(points_owed__gt=0), name="account_owing"),
                   models.Index(fields=["tier"], condition=models.Q(tier__isnull=False), name="account_tiered")]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} {self.member_number}"


class EntryKind(models.TextChoices):
    EARN = "earn", _("Earned")
    REDEEM = "redeem", _("Redeemed")
    EXPIRE = "expire", _("Expired")
    ADJUST = "adjust", _("Adjusted")
    REVERSE = "reverse", _("Reversed")


class LedgerEntry(models.Model):
    """One immutable movement of points. A balance is the sum of a customer's entries."""

    # Foreign keys without an index of their own where a composite or partial index below covers them: millions of
    # entries are written at once by a backfill, and every index costs there.
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="points_entries", db_index=False)
    kind = models.CharField(_("kind"), max_length=8, choices=EntryKind.choices)
    points = models.BigIntegerField(_("points"))
    at = models.DateTimeField(_("at"), help_text=_("when it happened: the purchase, the redemption, the expiry"))
    created_at = models.DateTimeField(_("recorded at"))
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             verbose_name=_("business unit"), db_index=False)
    order = models.ForeignKey("sales.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="points_entries",
                              verbose_name=_("order"), help_text=_("the sale that earned, or the refund that reversed"),
                              db_index=False)
    reverses = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals",
                                 verbose_name=_("reverses"), db_index=False)
    lot = models.ForeignKey("Lot", null=True, blank=True, on_delete=models.PROTECT, related_name="closing_entries",
                            verbose_name=_("expired lot"), db_index=False)
    referral = models.ForeignKey("Referral", null=True, blank=True, on_delete=models.PROTECT, related_name="entries",
                                 verbose_name=_("referral"), db_index=False)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("by"), db_index=False)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    verbose_name=_("approved by"), db_index=False)
    via = models.CharField(_("via"), max_length=20, blank=True, help_text=_("web, api, import, backfill, schedule…"))
    idempotency_key = models.CharField(_("request id"), max_length=64, blank=True,
                                       help_text=_("a redemption sent twice with the same id is recorded once"))

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("points entry")
        verbose_name_plural = _("points entries")
        indexes = [
            models.Index(fields=["customer", "-at", "-id"], name="ledger_customer_at"),
            models.Index(fields=["reverses"], condition=models.Q(reverses__isnull=False), name="ledger_reverses"),
            models.Index(fields=["lot"], condition=models.Q(lot__isnull=False), name="ledger_closed_lot"),
            models.Index(fields=["referral"], condition=models.Q(referral__isnull=False), name="ledger_referral"),
            models.Index(fields=["created_by"], condition=models.Q(created_by__isnull=False), name="ledger_created_by"),
            models.Index(fields=["approved_by"], condition=models.Q(approved_by__isnull=False), name="ledger_approved_by"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind="earn", points__gt=0) | models.Q(kind__in=["redeem", "expire", "reverse"], points__lt=0)
                           | (models.Q(kind="adjust") & ~models.Q(points=0))),
                name="ledger_points_sign_matches_kind"),
            # An order earns once and a refund reverses once, whatever replays the event (the backstop of the NOT
            # EXISTS in the set-based earn).
            models.UniqueConstraint(fields=["order", "kind"], condition=models.Q(order__isnull=False), name="ledger_once_per_order"),
            models.UniqueConstraint(fields=["idempotency_key"], condition=~models.Q(idempotency_key=""), name="ledger_unique_request"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.points:+,} #{self.pk}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("points entries are immutable: record a new entry instead")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("points entries are immutable")


class Lot(models.Model):
    """Points earned together (one purchase, one bonus) and what is left of them; spent and expired first in, first out."""

    # The lot shares its id with the entry that created it: no second id to allocate, no second unique index.
    entry = models.OneToOneField(LedgerEntry, primary_key=True, on_delete=models.PROTECT, related_name="created_lot")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="points_lots")
    points = models.BigIntegerField(_("points"))
    remaining = models.BigIntegerField(_("remaining"))
    earned_at = models.DateTimeField(_("earned at"))
    expires_at = models.DateTimeField(_("expires at"))
    notified_at = models.DateTimeField(_("expiry notice sent at"), null=True, blank=True)

    class Meta:
        ordering = ["expires_at", "entry"]
        verbose_name = _("points lot")
        verbose_name_plural = _("points lots")
        constraints = [models.CheckConstraint(condition=models.Q(remaining__gte=0, remaining__lte=models.F("points")),
                                              name="lot_remaining_within_points")]
        indexes = [
            models.Index(fields=["customer", "expires_at", "entry"], condition=models.Q(remaining__gt=0), name="lot_open_by_customer"),
            models.Index(fields=["expires_at"], condition=models.Q(remaining__gt=0), name="lot_open_by_expiry"),
        ]


class CouponStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    USED = "used", _("Used")
    VOID = "void", _("Void")


class CouponSource(models.TextChoices):
    TIER = "tier", _("Tier upgrade")
    CAMPAIGN = "campaign", _("Campaign")
    REFERRAL = "referral", _("Referral")
    MANUAL = "manual", _("Staff")
    STAMPS = "stamps", _("Stamp card")


class Coupon(models.Model):
    """A coupon in a customer's wallet."""

    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("coupon"))
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="coupons", db_index=False)
    code = models.CharField(_("code"), max_length=12, unique=True)
    status = models.CharField(_("status"), max_length=8, choices=CouponStatus.choices, default=CouponStatus.ACTIVE)
    source = models.CharField(_("issued for"), max_length=10, choices=CouponSource.choices)
    source_ref = models.CharField(_("issued by"), max_length=60, blank=True, help_text=_("the campaign or tier that issued it"))
    issued_at = models.DateTimeField(_("issued at"))
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    used_unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  verbose_name=_("used at"))
    used_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    purchase_krw = models.PositiveBigIntegerField(_("purchase amount (KRW)"), null=True, blank=True,
                                                  help_text=_("the sale it was used on, when the counter gave it"))
    discount_krw = models.PositiveBigIntegerField(_("discount given (KRW)"), null=True, blank=True,
                                                  help_text=_("what it took off; unknown for a gift, or a percentage without the amount"))

    class Meta:
        ordering = ["expires_at", "id"]
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        indexes = [models.Index(fields=["customer", "status", "expires_at"], name="coupon_wallet")]
        constraints = [models.CheckConstraint(condition=~models.Q(status="used") | models.Q(used_at__isnull=False),
                                              name="coupon_used_has_time")]

    def __str__(self) -> str:
        return f"{self.template} {self.code}"


class TierCause(models.TextChoices):
    PURCHASE = "purchase", _("Purchase")
    SCHEDULE = "schedule", _("Scheduled review")
    MERGE = "merge", _("Merge of records")


class TierChange(models.Model):
    """The tier history of a customer."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="tier_changes", db_index=False)
    from_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("from"))
    to_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("to"))
    at = models.DateTimeField(_("at"))
    cause = models.CharField(_("cause"), max_length=10, choices=TierCause.choices)
    qualifying_value = models.BigIntegerField(_("qualifying spend or points"), default=0)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        indexes = [models.Index(fields=["customer", "-at"], name="tierchange_customer_at")]


class ReferralStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for the first purchase")
    REWARDED = "rewarded", _("Rewarded")
    REFUSED = "refused", _("Refused")


class Referral(models.Model):
    """A newcomer who joined with a member's referral code; both are rewarded at the newcomer's first qualifying
    purchase."""

    referrer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="referrals_made", db_index=False)
    referred = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="referrals_received", db_index=False)
    code = models.CharField(_("code used"), max_length=10)
    status = models.CharField(_("status"), max_length=10, choices=ReferralStatus.choices, default=ReferralStatus.PENDING)
    refusal = models.CharField(_("why refused"), max_length=200, blank=True)
    linked_at = models.DateTimeField(_("linked at"))
    linked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rewarded_at = models.DateTimeField(_("rewarded at"), null=True, blank=True)
    qualifying_order = models.ForeignKey("sales.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # A merge that made referrer and newcomer one person refuses the referral; its undo gives the status back.
    voided_by_merge = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-linked_at", "-id"]
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        indexes = [models.Index(fields=["referred", "status"], name="referral_referred_status"),
                   models.Index(fields=["referrer", "status"], name="referral_referrer_status")]
        constraints = [models.CheckConstraint(condition=~models.Q(referrer=models.F("referred")) | models.Q(status="refused"),
                                              name="referral_not_self")]


# --- stamp cards (stamps.py) -------------------------------------------------------------------------------------------

class StampBasis(models.TextChoices):
    PURCHASE = "purchase", _("Per qualifying purchase (by amount)")
    ITEM = "item", _("Per item of the chosen products or categories")


class StampCard(models.Model):
    """A business unit's stamp card ("10 stamps → one free Americano"), beside or instead of points.

    A sale at the unit earns ``stamps`` stamps when its total reaches ``min_amount_krw`` (basis "purchase"), or
    ``stamps`` per item of the chosen products and categories (basis "item"); staff can also stamp in one tap at the
    counter. At ``target`` stamps the reward coupon goes into the member's wallet and the stamps are used up.
    Stamps expire ``validity_days`` after they were earned."""

    unit = models.ForeignKey("core.BusinessUnit", on_delete=models.PROTECT, related_name="stamp_cards", verbose_name=_("business unit"))
    name = models.CharField(_("name"), max_length=80)
    basis = models.CharField(_("stamps for"), max_length=8, choices=StampBasis.choices, default=StampBasis.PURCHASE)
    stamps = models.PositiveSmallIntegerField(_("stamps each time"), default=1, validators=[MinValueValidator(1), MaxValueValidator(100)],
                                              help_text=_("per qualifying purchase, or per qualifying item"))
    min_amount_krw = models.PositiveBigIntegerField(_("minimum purchase (KRW)"), default=0,
                                                    help_text=_("a purchase below this total earns no stamp"))
    products = models.ManyToManyField("sales.Product", blank=True, related_name="+", verbose_name=_("products"))
    categories = models.ManyToManyField("sales.Category", blank=True, related_name="+", verbose_name=_("categories"))
    target = models.PositiveSmallIntegerField(_("stamps for a reward"), default=10, validators=[MinValueValidator(1), MaxValueValidator(1000)])
    reward = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="+", verbose_name=_("reward coupon"))
    validity_days = models.PositiveSmallIntegerField(_("stamps valid for (days)"), default=365,
                                                     validators=[MinValueValidator(1), MaxValueValidator(3660)])
    starts_at = models.DateTimeField(_("stamps from"), default=timezone.now,
                                     help_text=_("purchases from this time on earn stamps (an imported history before it does not)"))
    max_per_tap = models.PositiveSmallIntegerField(_("most stamps in one tap"), default=5,
                                                   validators=[MinValueValidator(1), MaxValueValidator(100)])
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["unit", "name"]
        verbose_name = _("stamp card")
        verbose_name_plural = _("stamp cards")
        constraints = [
            # One running card per unit: a purchase there earns on exactly one card.
            models.UniqueConstraint(fields=["unit"], condition=models.Q(is_active=True), name="stampcard_one_active_per_unit"),
            models.CheckConstraint(condition=models.Q(stamps__gte=1, target__gte=1), name="stampcard_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.unit})"


class StampKind(models.TextChoices):
    EARN = "earn", _("Stamped")
    REWARD = "reward", _("Reward issued")
    EXPIRE = "expire", _("Expired")
    REVERSE = "reverse", _("Taken back (refund)")
    ADJUST = "adjust", _("Adjusted")


class StampEntry(models.Model):
    """One immutable movement of stamps on a customer's card. The stamps on the card are the sum of its entries."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="stamp_entries", db_index=False)
    card = models.ForeignKey(StampCard, on_delete=models.PROTECT, related_name="entries", db_index=False)
    kind = models.CharField(_("kind"), max_length=8, choices=StampKind.choices)
    stamps = models.IntegerField(_("stamps"))
    at = models.DateTimeField(_("at"))
    created_at = models.DateTimeField(_("recorded at"))
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    order = models.ForeignKey("sales.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="stamp_entries",
                              db_index=False)
    reverses = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals", db_index=False)
    lot = models.ForeignKey("StampLot", null=True, blank=True, on_delete=models.PROTECT, related_name="closing_entries", db_index=False)
    coupon = models.ForeignKey(Coupon, null=True, blank=True, on_delete=models.PROTECT, related_name="stamp_entries", db_index=False)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   db_index=False)
    via = models.CharField(_("via"), max_length=20, blank=True)
    idempotency_key = models.CharField(_("request id"), max_length=64, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("stamp entry")
        verbose_name_plural = _("stamp entries")
        indexes = [models.Index(fields=["customer", "card", "-at"], name="stamp_customer_card_at"),
                   models.Index(fields=["reverses"], condition=models.Q(reverses__isnull=False), name="stamp_reverses")]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind="earn", stamps__gt=0) | models.Q(kind__in=["reward", "expire", "reverse"], stamps__lt=0)
                           | (models.Q(kind="adjust") & ~models.Q(stamps=0))),
                name="stamp_sign_matches_kind"),
            # A sale stamps once and its refund takes back once, whatever replays the event.
            models.UniqueConstraint(fields=["order", "kind"], condition=models.Q(order__isnull=False), name="stamp_once_per_order"),
            models.UniqueConstraint(fields=["idempotency_key"], condition=~models.Q(idempotency_key=""), name="stamp_unique_request"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.stamps:+} #{self.pk}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("stamp entries are immutable: record a new entry instead")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("stamp entries are immutable")


class StampLot(models.Model):
    """Stamps earned together and what is left of them; used for rewards and expired first in, first out.

    Per customer and card: sum(entries) == sum(lots.remaining) - owed, where owed (stamps of refunded purchases that
    had already become a reward) is paid by the next stamps."""

    entry = models.OneToOneField(StampEntry, primary_key=True, on_delete=models.PROTECT, related_name="created_lot")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="stamp_lots", db_index=False)
    card = models.ForeignKey(StampCard, on_delete=models.PROTECT, related_name="lots", db_index=False)
    stamps = models.IntegerField(_("stamps"))
    remaining = models.IntegerField(_("remaining"))
    earned_at = models.DateTimeField(_("earned at"))
    expires_at = models.DateTimeField(_("expires at"))

    class Meta:
        ordering = ["expires_at", "entry"]
        verbose_name = _("stamp lot")
        verbose_name_plural = _("stamp lots")
        constraints = [models.CheckConstraint(condition=models.Q(remaining__gte=0, remaining__lte=models.F("stamps")),
                                              name="stamplot_remaining_within_stamps")]
        indexes = [
            models.Index(fields=["customer", "card", "expires_at", "entry"], condition=models.Q(remaining__gt=0), name="stamplot_open"),
            models.Index(fields=["expires_at"], condition=models.Q(remaining__gt=0), name="stamplot_open_by_expiry"),
        ]
