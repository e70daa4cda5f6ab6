"""The default SLA rules (hours to resolve per type and priority) and a CSAT survey sent after a closed case."""
from django.db import migrations

HOURS = {
    "complaint": {"urgent": 4, "high": 8, "normal": 24, "low": 72},
    "as": {"urgent": 24, "high": 48, "normal": 72, "low": 120},
    "inquiry": {"urgent": 4, "high": 8, "normal": 24, "low": 48},
    "request": {"urgent": 8, "high": 24, "normal": 48, "low": 96},
}


def forwards(apps, schema_editor):
    SlaRule = apps.get_model("service", "SlaRule")
    Survey = apps.get_model("service", "Survey")
    for case_type, by_priority in HOURS.items():
        for priority, hours in by_priority.items():
            SlaRule.objects.get_or_create(case_type=case_type, priority=priority, defaults={"resolve_hours": hours})
    if not Survey.objects.exists():
        Survey.objects.create(name="After a case (CSAT)", score_kind="csat", trigger="after_case", is_active=True,
                              question="", valid_days=14)


def backwards(apps, schema_editor):
    pass


class Migration(migrations.Migration):
    dependencies = [("service", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
