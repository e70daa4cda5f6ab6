"""Start-up checks: in production (DANGOL_ENV=production) Dangol refuses to run with unsafe settings."""
from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def production_settings(app_configs=None, **kwargs):
    if settings.DANGOL_ENV != "production":
        return []
    problems = []
    if settings.SECRET_KEY == settings.DEMO_SECRET_KEY or len(settings.SECRET_KEY) < 40:
        problems.append(Error("DANGOL_SECRET_KEY is the demo key or too short.",
                              hint="Set DANGOL_SECRET_KEY to a random string of 50+ characters.", id="dangol.E001"))
    if settings.DEBUG:
        problems.append(Error("DANGOL_DEBUG is on in production.", hint="Unset DANGOL_DEBUG.", id="dangol.E002"))
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        problems.append(Warning("Production runs on SQLite.", hint="Set DATABASE_URL to PostgreSQL for more than one host.",
                                id="dangol.W001"))
    if not settings.SECURE_TLS:
        problems.append(Warning("DANGOL_TLS is off: cookies are not marked secure and HSTS is off.",
                                hint="Serve behind TLS and set DANGOL_TLS=1.", id="dangol.W002"))
    return problems
