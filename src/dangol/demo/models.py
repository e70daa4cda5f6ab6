from django.db import models
from django.utils.translation import gettext_lazy as _


class DuplicateVariation(models.TextChoices):
    SWAPPED_SYLLABLES = "swapped_syllables", _("Given-name syllables swapped, same phone")
    EXTRA_SPACE = "extra_space", _("Space between surname and given name, same phone")
    SIMILAR_SYLLABLE = "similar_syllable", _("One syllable misheard or mistyped, same phone")
    EMAIL_UPPERCASE = "email_uppercase", _("Same name and email (typed in capitals at the unit, stored lower-cased), no phone")
    PHONE_ONE_DIGIT = "phone_one_digit", _("Same name and birthday, one digit of the phone different")


class GeneratedDuplicate(models.Model):
    """The ground truth of the generator: ``duplicate`` is a second record of the same person as ``original``.

    The benchmark of duplicate detection scores itself against these pairs. The foreign keys carry no database
    constraint and do nothing on delete, so the truth survives a merge that deletes the duplicate record (the row
    then points at a customer id that no longer exists, which is exactly what a scorer needs to see).
    """

    duplicate = models.ForeignKey("customers.Customer", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+",
                                  verbose_name=_("duplicate record"))
    original = models.ForeignKey("customers.Customer", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+",
                                 verbose_name=_("original record"))
    variation = models.CharField(_("variation"), max_length=40, choices=DuplicateVariation.choices)

    class Meta:
        verbose_name = _("generated duplicate")
        verbose_name_plural = _("generated duplicates")
        constraints = [models.UniqueConstraint(fields=["duplicate"], name="generated_duplicate_once")]
