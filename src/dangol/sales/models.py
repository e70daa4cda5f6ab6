from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Category(models.Model):
    name = models.CharField(_("name"), max_length=80)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children", verbose_name=_("parent"))
    unit = models.ForeignKey("core.BusinessUnit", null=True, blank=True, on_delete=models.PROTECT, related_name="categories",
                             verbose_name=_("business unit"), help_text=_("empty: shared by the whole group"))

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["unit", "name"], name="category_unique_name_per_unit")]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    unit = models.ForeignKey("core.BusinessUnit", on_delete=models.PROTECT, related_name="products", verbose_name=_("business unit"))
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products", verbose_name=_("category"))
    sku = models.CharField(_("SKU"), max_length=40)
    name = models.CharField(_("name"), max_length=120)
    price = models.PositiveBigIntegerField(_("price (KRW)"))
    unit_cost = models.PositiveBigIntegerField(_("unit cost (KRW)"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["unit", "name"]
        constraints = [models.UniqueConstraint(fields=["unit", "sku"], name="product_unique_sku_per_unit")]
        verbose_name = _("product")
        verbose_name_plural = _("products")

    def __str__(self) -> str:
        return self.name


class SalesChannel(models.TextChoices):
    STORE = "store", _("Store")
    PHONE = "phone", _("Phone")
    WEB = "web", _("Web")
    APP = "app", _("App")


class OrderKind(models.TextChoices):
    SALE = "sale", _("Sale")
    REFUND = "refund", _("Refund")


class Order(models.Model):
    """A sale, or a refund stored as a negative order that points at the sale it reverses."""

    unit = models.ForeignKey("core.BusinessUnit", on_delete=models.PROTECT, related_name="orders", verbose_name=_("business unit"))
    customer = models.ForeignKey("customers.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="orders",
                                 verbose_name=_("customer"))
    kind = models.CharField(_("kind"), max_length=8, choices=OrderKind.choices, default=OrderKind.SALE)
    refund_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("refund of"))
    channel = models.CharField(_("channel"), max_length=8, choices=SalesChannel.choices, default=SalesChannel.STORE)
    ordered_at = models.DateTimeField(_("ordered at"))
    total = models.BigIntegerField(_("total (KRW)"))
    external_ref = models.CharField(_("external reference"), max_length=60, blank=True)
    # An imported order with an outlier flag stays out of analytics until a manager accepts it (ingest.OrderFlag).
    needs_review = models.BooleanField(_("needs review"), default=False, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-ordered_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-ordered_at"]),
            models.Index(fields=["unit", "-ordered_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind="sale", total__gte=0, refund_of__isnull=True) | models.Q(kind="refund", total__lte=0)),
                name="order_sign_matches_kind",
            ),
            # A sale is refunded at most once (the service checks under a row lock; this is the backstop).
            models.UniqueConstraint(fields=["refund_of"], condition=models.Q(kind="refund"), name="order_one_refund_per_sale"),
            # A unit's own order number identifies an order once: re-importing the same file changes nothing.
            models.UniqueConstraint(fields=["unit", "external_ref"], condition=~models.Q(external_ref=""),
                                    name="order_unique_external_ref_per_unit"),
        ]
        verbose_name = _("order")
        verbose_name_plural = _("orders")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="lines", verbose_name=_("product"))
    quantity = models.IntegerField(_("quantity"))
    unit_price = models.BigIntegerField(_("unit price (KRW)"))
    unit_cost = models.BigIntegerField(_("unit cost (KRW)"), default=0)
    line_total = models.BigIntegerField(_("line total (KRW)"))

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=~models.Q(quantity=0), name="orderline_quantity_nonzero")]
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
