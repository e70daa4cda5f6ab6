from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _ensure_groups(sender, **kwargs):
    from .services import ensure_manager_group

    ensure_manager_group()


class CoreConfig(AppConfig):
    name = "dangol.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self):
        from . import checks  # noqa: F401  (registers the production checks)

        # Permissions exist only after every app has migrated, hence post_migrate (sent once per app; idempotent).
        post_migrate.connect(_ensure_groups, sender=self, dispatch_uid="dangol-core-groups")
