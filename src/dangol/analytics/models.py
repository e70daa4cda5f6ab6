"""The analytics snapshot: one row of metrics per live customer, and one row per refresh with the fitted models.

Both are written only by ``services.refresh_metrics`` (set-based, in one transaction: readers see the previous
snapshot until the new one is complete). Segments, the 360° page, the API and exports read them through
``selectors``."""
from django.db import models
from django.utils.translation import gettext_lazy as _

from dangol.customers.models import Stage


class RfmSegment(models.TextChoices):
    """Named RFM segments; the rule table (R score × F score) is ``rfm.SEGMENT_GRID``."""

    CHAMPIONS = "champions", _("Champions")
    LOYAL = "loyal", _("Loyal")
    POTENTIAL_LOYALIST = "potential_loyalist", _("Potential loyalist")
    NEW = "new", _("New")
    PROMISING = "promising", _("Promising")
    NEED_ATTENTION = "need_attention", _("Need attention")
    ABOUT_TO_SLEEP = "about_to_sleep", _("About to sleep")
    AT_RISK = "at_risk", _("At risk")
    CANT_LOSE = "cant_lose", _("Can't lose them")
    HIBERNATING = "hibernating", _("Hibernating")
    LOST = "lost", _("Lost")


class CustomerMetrics(models.Model):
    """Metrics of one customer as of ``as_of`` (end of that day in Asia/Seoul).

    Orders flagged ``needs_review`` (and refunds of them) are left out of everything. A sale counts as a purchase
    unless its refunds cancel it entirely; partial refunds lower its value. Day-based figures use the calendar day in
    Seoul. A customer who never bought has no scores (nulls) and a blank ``rfm_segment``."""

    customer = models.OneToOneField("customers.Customer", on_delete=models.CASCADE, primary_key=True,
                                    related_name="metrics", verbose_name=_("customer"))
    as_of = models.DateField(_("as of"))
    first_order_at = models.DateTimeField(_("first purchase"), null=True, blank=True)
    last_order_at = models.DateTimeField(_("last purchase"), null=True, blank=True)
    orders = models.IntegerField(_("purchases"), default=0, help_text=_("sale orders, fully refunded ones left out"))
    frequency = models.IntegerField(_("repeat purchase days"), default=0,
                                    help_text=_("days with a purchase after the first one (the BG/NBD x)"))
    recency_days = models.IntegerField(_("days since last purchase"), null=True, blank=True)
    tenure_days = models.IntegerField(_("tenure (days)"), default=0,
                                      help_text=_("days since the relationship began (joined or first purchase, the earlier)"))
    monetary_total = models.BigIntegerField(_("total spend (KRW)"), default=0, help_text=_("net of refunds"))
    monetary_avg = models.BigIntegerField(_("average order (KRW)"), default=0)
    r_score = models.SmallIntegerField(_("R score"), null=True, blank=True)
    f_score = models.SmallIntegerField(_("F score"), null=True, blank=True)
    m_score = models.SmallIntegerField(_("M score"), null=True, blank=True)
    rfm_segment = models.CharField(_("RFM segment"), max_length=20, choices=RfmSegment.choices, blank=True,
                                   help_text=_("blank for a customer without purchases"))
    p_alive = models.FloatField(_("probability still active"), null=True, blank=True)
    expected_purchases_90 = models.FloatField(_("expected purchases, next 90 days"), null=True, blank=True)
    expected_purchases_365 = models.FloatField(_("expected purchases, next 365 days"), null=True, blank=True)
    expected_avg_spend = models.FloatField(_("expected average spend (KRW)"), null=True, blank=True)
    clv_12m = models.BigIntegerField(_("12-month customer lifetime value (KRW)"), null=True, blank=True)
    churn_risk = models.FloatField(_("churn risk"), null=True, blank=True)
    revenue = models.BigIntegerField(_("revenue (KRW)"), default=0)
    cost = models.BigIntegerField(_("product cost (KRW)"), default=0)
    discounts = models.BigIntegerField(_("discounts (KRW)"), default=0)
    redeemed_points = models.BigIntegerField(_("redeemed points (KRW)"), default=0)
    profit = models.BigIntegerField(_("profit (KRW)"), default=0)
    units_used = models.SmallIntegerField(_("business units used"), default=0)
    wallet_share = models.FloatField(_("share of wallet"), default=0.0,
                                     help_text=_("business units used / active business units of the group"))
    suggested_stage = models.CharField(_("suggested stage"), max_length=16, choices=Stage.choices, default=Stage.PROSPECT)

    class Meta:
        verbose_name = _("customer metrics")
        verbose_name_plural = _("customer metrics")
        indexes = [
            models.Index(fields=["rfm_segment"], name="metrics_rfm_segment"),
            models.Index(fields=["clv_12m"], name="metrics_clv_12m"),
            models.Index(fields=["churn_risk"], name="metrics_churn_risk"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(r_score__gte=1, r_score__lte=5) | models.Q(r_score__isnull=True),
                                   name="metrics_r_score_range"),
            models.CheckConstraint(condition=models.Q(f_score__gte=1, f_score__lte=5) | models.Q(f_score__isnull=True),
                                   name="metrics_f_score_range"),
            models.CheckConstraint(condition=models.Q(m_score__gte=1, m_score__lte=5) | models.Q(m_score__isnull=True),
                                   name="metrics_m_score_range"),
        ]

    def __str__(self) -> str:
        return f"metrics of customer #{self.customer_id} as of {self.as_of}"


class ModelRun(models.Model):
    """One refresh: when, how long, how many customers, the fitted models and how well churn is predicted."""

    as_of = models.DateField(_("as of"), db_index=True)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"))
    seconds = models.FloatField(_("seconds"))
    customers = models.IntegerField(_("customers"))
    bgnbd = models.JSONField(_("BG/NBD parameters"), default=dict, blank=True,
                             help_text=_("r, alpha, a, b, ll (time in days); empty when it could not be fitted"))
    gamma_gamma = models.JSONField(_("Gamma-Gamma parameters"), default=dict, blank=True,
                                   help_text=_("p, q, gamma, ll (KRW); empty when it could not be fitted"))
    churn_auc = models.FloatField(_("churn model AUC (held out)"), null=True, blank=True)
    baseline_auc = models.FloatField(_("P(alive) baseline AUC (same customers)"), null=True, blank=True)
    discount_rate_monthly = models.FloatField(_("monthly discount rate"))
    notes = models.TextField(_("notes"), blank=True)
    # Machine-readable extras: seconds per phase, churn horizon and set sizes, feature names, the rule versions.
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        ordering = ["-finished_at", "-id"]
        verbose_name = _("analytics run")
        verbose_name_plural = _("analytics runs")

    def __str__(self) -> str:
        return f"analytics run as of {self.as_of}"
