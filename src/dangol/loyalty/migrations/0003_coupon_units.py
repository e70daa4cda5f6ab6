"""A coupon can be good at several business units (issue 7: "units where valid"): the one-unit field becomes a set,
each old value kept as the only member of its set (none still means every unit)."""
from django.db import migrations, models


def copy_unit(apps, schema_editor):
    CouponTemplate = apps.get_model("loyalty", "CouponTemplate")
    through = CouponTemplate.units.through
    through.objects.bulk_create([through(**{"coupontemplate_id": pk, "businessunit_id": unit_id}) for pk, unit_id
                                 in CouponTemplate.objects.filter(unit__isnull=False).values_list("pk", "unit_id")], batch_size=1000)


def copy_units_back(apps, schema_editor):
    CouponTemplate = apps.get_model("loyalty", "CouponTemplate")
    through = CouponTemplate.units.through
    for row in through.objects.order_by("coupontemplate_id", "businessunit_id").values("coupontemplate_id", "businessunit_id"):
        CouponTemplate.objects.filter(pk=row["coupontemplate_id"], unit__isnull=True).update(unit_id=row["businessunit_id"])


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0003_businessunit_opened_on'),
        ('loyalty', '0002_stamp_cards'),
    ]

    operations = [
        migrations.AddField(
            model_name="coupontemplate",
            name="units",
            field=models.ManyToManyField(blank=True, help_text='none: at every business unit', related_name='+', to='core.businessunit', verbose_name='usable at'),
        ),
        migrations.RunPython(copy_unit, copy_units_back),
        migrations.RemoveField(
            model_name="coupontemplate",
            name="unit",
        ),
    ]
