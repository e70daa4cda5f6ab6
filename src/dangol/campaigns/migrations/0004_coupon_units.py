"""A coupon can be good at several business units (issue 7: "units where valid"): the one-unit field becomes a set,
each old value kept as the only member of its set (none still means every unit)."""
from django.db import migrations, models


def copy_unit(apps, schema_editor):
    Offer = apps.get_model("campaigns", "Offer")
    through = Offer.units.through
    through.objects.bulk_create([through(**{"offer_id": pk, "businessunit_id": unit_id}) for pk, unit_id
                                 in Offer.objects.filter(unit__isnull=False).values_list("pk", "unit_id")], batch_size=1000)


def copy_units_back(apps, schema_editor):
    Offer = apps.get_model("campaigns", "Offer")
    through = Offer.units.through
    for row in through.objects.order_by("offer_id", "businessunit_id").values("offer_id", "businessunit_id"):
        Offer.objects.filter(pk=row["offer_id"], unit__isnull=True).update(unit_id=row["businessunit_id"])


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0003_segment_facts_triggers'),
        ('core', '0003_businessunit_opened_on'),
    ]

    operations = [
        migrations.AddField(
            model_name="offer",
            name="units",
            field=models.ManyToManyField(blank=True, help_text='none: at every business unit', related_name='+', to='core.businessunit', verbose_name='usable at'),
        ),
        migrations.RunPython(copy_unit, copy_units_back),
        migrations.RemoveField(
            model_name="offer",
            name="unit",
        ),
    ]
