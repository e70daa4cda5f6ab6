"""Key rotation of the fields encrypted at rest (``dangol.core.crypto``)."""
from __future__ import annotations

from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from dangol.core import crypto


def rotate_all(*, batch: int = 1000) -> dict[str, int]:
    """Re-encrypt every non-empty encrypted value with the first key; returns rows rewritten per model.field.

    The tokens are read as stored (a Cast keeps the field's decryption out of the way) and rotated with
    MultiFernet.rotate, which decrypts with whichever key fits and encrypts with the first."""
    counts: dict[str, int] = {}
    for model, name in crypto.encrypted_fields():
        label = f"{model._meta.label_lower}.{name}"
        counts[label] = 0
        table, column = model._meta.db_table, model._meta.get_field(name).column
        last = 0
        while True:
            rows = list(model._base_manager.filter(pk__gt=last).exclude(**{name: ""}).exclude(**{f"{name}__isnull": True})
                        .annotate(raw=Cast(name, TextField())).order_by("pk").values_list("pk", "raw")[:batch])
            if not rows:
                break
            with transaction.atomic():
                from django.db import connection

                with connection.cursor() as cursor:
                    cursor.executemany(
                        f"UPDATE {connection.ops.quote_name(table)} SET {connection.ops.quote_name(column)} = %s "
                        f"WHERE {connection.ops.quote_name(model._meta.pk.column)} = %s",
                        [(crypto.rotate(raw), pk) for pk, raw in rows],
                    )
            counts[label] += len(rows)
            last = rows[-1][0]
    return counts
