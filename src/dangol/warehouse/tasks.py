"""The scheduled warehouse export (pseudonymised, to ``DANGOL_WAREHOUSE_DIR``); idempotent: a run writes only what is
new since the last one."""
from __future__ import annotations

from django_tasks import task


@task(queue_name="analytics")
def export_to_warehouse() -> str:
    from django.conf import settings

    from dangol.core.audit import Actor

    from .export import export_warehouse

    directory = getattr(settings, "WAREHOUSE_DIR", "")
    if not directory:
        return "DANGOL_WAREHOUSE_DIR is not set: nothing exported"
    return export_warehouse(directory=directory, actor=Actor.system("schedule")).summary_line
