"""One settings module, configured from environment variables.

SQLite under DANGOL_DATA_DIR is the embedded default; set DATABASE_URL for PostgreSQL.
"""
import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEMO_SECRET_KEY = "dangol-demo-secret-key-not-for-production"
SECRET_KEY = os.environ.get("DANGOL_SECRET_KEY", DEMO_SECRET_KEY)
DEBUG = env_bool("DANGOL_DEBUG", False)
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DANGOL_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("DANGOL_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

DATA_DIR = Path(os.environ.get("DANGOL_DATA_DIR", "var")).resolve()
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'dangol.sqlite3'}",
        conn_max_age=int(os.environ.get("DANGOL_DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web process read while a generator or worker writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "axes",
    "django_tasks",
    "django_tasks_db",
    "dangol.core",
    "dangol.customers",
    "dangol.sales",
    "dangol.ingest",
    "dangol.messaging",
    "dangol.loyalty",
    "dangol.service",
    "dangol.analytics",
    "dangol.campaigns",
    "dangol.privacy",
    "dangol.warehouse",
    "dangol.partners",
    "dangol.gatherings",
    "dangol.web",
    "dangol.api",
    "dangol.demo",
]

MIDDLEWARE = [
    "dangol.core.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # AxesMiddleware last, as its documentation asks.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dangol.urls"
WSGI_APPLICATION = "dangol.wsgi.application"
AUTH_USER_MODEL = "core.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "dangol.web.panels.nav_links",
            ],
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", _("Korean")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Seoul"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("DANGOL_STATIC_ROOT", DATA_DIR / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Development and tests serve static files straight from the apps, no collectstatic needed.
WHITENOISE_USE_FINDERS = env_bool("DANGOL_STATIC_FROM_FINDERS", True)
if WHITENOISE_USE_FINDERS:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    STATIC_ROOT = None  # nothing collected: whitenoise serves from the apps' static folders

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"

# Security defaults; the cookie flags follow TLS so the demo still works on plain http://127.0.0.1.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not from the cookie
SECURE_TLS = env_bool("DANGOL_TLS", False)
SESSION_COOKIE_SECURE = SECURE_TLS
CSRF_COOKIE_SECURE = SECURE_TLS
SECURE_HSTS_SECONDS = 31536000 if SECURE_TLS else 0
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_AGE = int(os.environ.get("DANGOL_SESSION_SECONDS", str(8 * 3600)))

# Login rate limiting (django-axes): lock an account+IP after 5 failures for 15 minutes.
AXES_FAILURE_LIMIT = int(os.environ.get("DANGOL_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "web/locked_out.html"
AXES_VERBOSE = False

# Behind N reverse proxies (the TLS terminator, a load balancer), the client's address is the N-th from the right
# in X-Forwarded-For; with 0 (no proxy) REMOTE_ADDR is used and X-Forwarded-For, which anyone can send, is ignored.
TRUSTED_PROXY_COUNT = int(os.environ.get("DANGOL_TRUSTED_PROXY_COUNT", "0"))
AXES_CLIENT_IP_CALLABLE = "dangol.core.audit.client_ip"  # one rule for the lockout and the audit trail

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "dangol.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "dangol.api.errors.exception_handler",
    # Per token and per web process (the cache is process-local): a brake on runaway integrations, not a quota.
    "DEFAULT_THROTTLE_RATES": {"user": os.environ.get("DANGOL_API_RATE", "30000/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Dangol API",
    "DESCRIPTION": "REST API of the Dangol CRM. Authenticate with `Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ConsentChannelEnum": "dangol.customers.models.Channel",
        "SalesChannelEnum": "dangol.sales.models.SalesChannel",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"scrub": {"()": "dangol.core.logging.ScrubPersonalData"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "dangol.core.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["scrub"],
                             "formatter": os.environ.get("DANGOL_LOG_FORMAT", "plain")}},
    "root": {"handlers": ["console"], "level": os.environ.get("DANGOL_LOG_LEVEL", "INFO")},
    # django.server (runserver's request lines) has its own handler by default: route it through the filter too.
    "loggers": {"axes": {"level": "WARNING"}, "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# Background work: Django's tasks framework (django-tasks backport). The database queue by default (SQLite for the
# demo, PostgreSQL in production, any number of `dangol worker` processes); Redis (django-tasks-rq) when
# DANGOL_TASK_BACKEND=rq; "immediate" runs tasks inline (tests of services that enqueue).
TASK_BACKEND = os.environ.get("DANGOL_TASK_BACKEND", "db")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
TASK_QUEUES = ["default", "analytics", "messages"]
if TASK_BACKEND == "rq":
    INSTALLED_APPS += ["django_rq"]
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": TASK_QUEUES}}
    RQ_QUEUES = {name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600} for name in TASK_QUEUES}
elif TASK_BACKEND == "immediate":
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend", "QUEUES": TASK_QUEUES}}
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": TASK_QUEUES}}
# A worker that has not renewed its lease for this long is taken as dead; its running task is put back in the queue.
WORKER_LEASE_SECONDS = int(os.environ.get("DANGOL_WORKER_LEASE_SECONDS", "60"))

# DANGOL_ENV=production turns on the start-up checks that refuse unsafe settings (the demo secret key, DEBUG).
DANGOL_ENV = os.environ.get("DANGOL_ENV", "development")

# Phone numbers are parsed as Korean unless they carry a country code.
DANGOL_PHONE_REGION = os.environ.get("DANGOL_PHONE_REGION", "KR")
TIMELINE_PAGE_SIZE = 20

# Imports and cleansing. After an import that created or changed customers, look for duplicates in the background.
DANGOL_DEDUPE_AFTER_IMPORT = os.environ.get("DANGOL_DEDUPE_AFTER_IMPORT", "1") != "0"
# Record linkage: pairs at or above DANGOL_DEDUPE_AUTO_MERGE merge by themselves; pairs at or above DANGOL_DEDUPE_REVIEW
# wait in the review queue; DuckDB's memory cap for the scoring.
DANGOL_DEDUPE_AUTO_MERGE = float(os.environ.get("DANGOL_DEDUPE_AUTO_MERGE", "0.99"))
DANGOL_DEDUPE_REVIEW = float(os.environ.get("DANGOL_DEDUPE_REVIEW", "0.80"))
DANGOL_DEDUPE_MEMORY_LIMIT = os.environ.get("DANGOL_DEDUPE_MEMORY_LIMIT", "2GB")
# An imported customer with more orders than this on one day has them flagged for review.
DANGOL_OUTLIER_ORDERS_PER_DAY = int(os.environ.get("DANGOL_OUTLIER_ORDERS_PER_DAY", "20"))
SEARCH_RESULT_LIMIT = 50

# --- messaging-core ---
# Providers per channel (dangol.messaging.providers): "file" writes every message under DANGOL_DATA_DIR/outbox (the
# zero-service default), "nhn" is the Korean SMS/LMS + AlimTalk HTTP API (NHN Cloud style), "smtp" sends email through
# Django's SMTP backend. Credentials only from the environment.
MESSAGING_PROVIDERS = {
    "sms": os.environ.get("DANGOL_MESSAGING_PROVIDER_SMS", "file"),
    "kakao": os.environ.get("DANGOL_MESSAGING_PROVIDER_KAKAO", "file"),
    "email": os.environ.get("DANGOL_MESSAGING_PROVIDER_EMAIL", "file"),
}
MESSAGING_NHN = {
    "SMS_URL": os.environ.get("DANGOL_NHN_SMS_URL", "https://api-sms.cloud.toast.com"),
    "SMS_APP_KEY": os.environ.get("DANGOL_NHN_SMS_APP_KEY", ""),
    "ALIMTALK_URL": os.environ.get("DANGOL_NHN_ALIMTALK_URL", "https://api-alimtalk.cloud.toast.com"),
    "ALIMTALK_APP_KEY": os.environ.get("DANGOL_NHN_ALIMTALK_APP_KEY", ""),
    "SECRET_KEY": os.environ.get("DANGOL_NHN_SECRET_KEY", ""),
    "KAKAO_SENDER_KEY": os.environ.get("DANGOL_KAKAO_SENDER_KEY", ""),
    "TIMEOUT": float(os.environ.get("DANGOL_NHN_TIMEOUT", "10")),
}
# Delivery-report webhooks are signed with HMAC-SHA256 over the raw body with this secret (X-Dangol-Signature).
MESSAGING_WEBHOOK_SECRET = os.environ.get("DANGOL_MESSAGING_WEBHOOK_SECRET", "")
# Where public links (one-click unsubscribe) point to.
PUBLIC_BASE_URL = os.environ.get("DANGOL_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# The sender of ads when no SenderProfile is set (정보통신망법 §50: name, contact, free opt-out).
MESSAGING_SENDER = {
    "NAME": os.environ.get("DANGOL_SENDER_NAME", "단골"),
    "CONTACT": os.environ.get("DANGOL_SENDER_CONTACT", "02-000-0000"),
    "OPTOUT_NUMBER": os.environ.get("DANGOL_OPTOUT_NUMBER", "080-000-0000"),
    "SMS_FROM": os.environ.get("DANGOL_SMS_FROM", "0200000000"),
}
DEFAULT_FROM_EMAIL = os.environ.get("DANGOL_EMAIL_FROM", "dangol@localhost")
EMAIL_HOST = os.environ.get("DANGOL_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DANGOL_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("DANGOL_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DANGOL_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DANGOL_EMAIL_TLS", False)
EMAIL_TIMEOUT = 20
# The legal exception to prior consent (contact collected in a transaction, same kind of goods, 6 months after it):
# off unless the business turns it on and vouches for "same kind of goods".
MESSAGING_TRANSACTION_EXCEPTION = env_bool("DANGOL_MESSAGING_TRANSACTION_EXCEPTION", False)
MESSAGING_TRANSACTION_EXCEPTION_MONTHS = int(os.environ.get("DANGOL_MESSAGING_TRANSACTION_EXCEPTION_MONTHS", "6"))
# Per-provider sending rate per worker process (messages/s, 0 = unlimited), e.g. "nhn=300,smtp=20".
MESSAGING_RATE_LIMITS = {k.strip(): float(v) for k, v in (p.split("=") for p in os.environ.get(
    "DANGOL_MESSAGING_RATE_LIMITS", "nhn=300,smtp=20").split(",") if "=" in p)}
MESSAGING_BATCH_SIZE = int(os.environ.get("DANGOL_MESSAGING_BATCH_SIZE", "200"))
# With a big queue, a dispatch task asks this many more workers to join in.
MESSAGING_DISPATCH_FANOUT = int(os.environ.get("DANGOL_MESSAGING_DISPATCH_FANOUT", "1"))
MESSAGING_MAX_ATTEMPTS = int(os.environ.get("DANGOL_MESSAGING_MAX_ATTEMPTS", "6"))
# A claim older than this belongs to a dead worker: its messages become "uncertain" and are reconciled.
MESSAGING_CLAIM_SECONDS = int(os.environ.get("DANGOL_MESSAGING_CLAIM_SECONDS", "120"))
# Uncertain messages of providers without an idempotency key wait this long for a delivery report, then fail.
MESSAGING_REPORT_WAIT_HOURS = int(os.environ.get("DANGOL_MESSAGING_REPORT_WAIT_HOURS", "24"))

# --- privacy ---
# Fernet keys for fields encrypted at rest (sensitive notes), comma-separated: the first encrypts, all decrypt.
# Rotate: put a new key first, run `dangol privacy rotate-keys`, then drop the old key. Unset: a key derived from
# SECRET_KEY with a warning (development and demo only; production refuses to start).
DANGOL_FIELD_KEYS = os.environ.get("DANGOL_FIELD_KEYS", "")
# Retention per kind of data (개인정보보호법 §21: destroyed without delay once the retention period published in the
# privacy policy has passed). Customers with no activity (purchase, visit, consent given) for this many years are
# anonymised by the daily retention job; orders stay, without identity.
DANGOL_RETENTION_CUSTOMER_YEARS = int(os.environ.get("DANGOL_RETENTION_CUSTOMER_YEARS", "3"))
# Access logs (the audit trail) at least two years (개인정보의 안전성 확보조치 기준 §8 ①); values below 2 are raised to 2.
DANGOL_RETENTION_ACCESS_LOG_YEARS = max(2, int(os.environ.get("DANGOL_RETENTION_ACCESS_LOG_YEARS", "2")))
# Rejected import rows quote the raw values (phone numbers, names) of the file: kept this many days for the report.
DANGOL_RETENTION_IMPORT_ERRORS_DAYS = int(os.environ.get("DANGOL_RETENTION_IMPORT_ERRORS_DAYS", "180"))
# Data-subject requests are answered within 10 days (시행령 §41 ④, §43 ③, §44 ②); "near due" this many days before.
DANGOL_DSR_DUE_DAYS = int(os.environ.get("DANGOL_DSR_DUE_DAYS", "10"))
DANGOL_DSR_NEAR_DUE_DAYS = int(os.environ.get("DANGOL_DSR_NEAR_DUE_DAYS", "3"))

# --- service ---
# Where the links in messages to customers point (survey links): the public address of the web app.
DANGOL_PUBLIC_URL = os.environ.get("DANGOL_PUBLIC_URL", "http://127.0.0.1:8000")
# Channel of case confirmations, replies and survey invitations to customers with a phone (email without one).
DANGOL_SERVICE_MESSAGE_CHANNEL = os.environ.get("DANGOL_SERVICE_MESSAGE_CHANNEL", "sms")
# Resolved cases close by themselves after this many days (0: never); closing sends the satisfaction survey.
DANGOL_SERVICE_AUTOCLOSE_DAYS = int(os.environ.get("DANGOL_SERVICE_AUTOCLOSE_DAYS", "7"))
DANGOL_SERVICE_SURVEY_AFTER_CASE = env_bool("DANGOL_SERVICE_SURVEY_AFTER_CASE", True)
DANGOL_SERVICE_SURVEY_PURCHASE_DELAY_HOURS = int(os.environ.get("DANGOL_SERVICE_SURVEY_PURCHASE_DELAY_HOURS", "24"))
# Goodwill: staff give amount coupons up to this value (managers any coupon and points, at most this many points).
DANGOL_SERVICE_STAFF_GOODWILL_KRW = int(os.environ.get("DANGOL_SERVICE_STAFF_GOODWILL_KRW", "10000"))
DANGOL_SERVICE_GOODWILL_MAX_POINTS = int(os.environ.get("DANGOL_SERVICE_GOODWILL_MAX_POINTS", "100000"))
# The public inquiry / A/S form: requests per client IP and hour, and the least seconds a human takes to fill it in.
DANGOL_SERVICE_FORM_PER_HOUR = int(os.environ.get("DANGOL_SERVICE_FORM_PER_HOUR", "5"))
DANGOL_SERVICE_FORM_MIN_SECONDS = int(os.environ.get("DANGOL_SERVICE_FORM_MIN_SECONDS", "3"))

# --- security-api ---
# Two factors (TOTP, django-otp) for admins and managers. On by default in production; the demo and the test suite
# run without unless DANGOL_2FA_REQUIRED=1 (tests switch it on with the `settings` fixture).
INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp"]
MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
                  "django_otp.middleware.OTPMiddleware")
# after the messages middleware: an expired session says so on the login page
MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.messages.middleware.MessageMiddleware") + 1,
                  "dangol.web.security.SessionExpiryMiddleware")
MIDDLEWARE.insert(MIDDLEWARE.index("dangol.web.security.SessionExpiryMiddleware") + 1, "dangol.web.security.TwoFactorMiddleware")
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "dangol.web.security.SecurityHeadersMiddleware")
DANGOL_2FA_REQUIRED = env_bool("DANGOL_2FA_REQUIRED", DANGOL_ENV == "production")
OTP_TOTP_ISSUER = os.environ.get("DANGOL_2FA_ISSUER", "Dangol")
# Sessions end after DANGOL_SESSION_IDLE_SECONDS without a request (30 min) and DANGOL_SESSION_SECONDS after the
# login whatever happens (SESSION_COOKIE_AGE above, 8 h).
DANGOL_SESSION_IDLE_SECONDS = int(os.environ.get("DANGOL_SESSION_IDLE_SECONDS", str(30 * 60)))
DANGOL_SESSION_ABSOLUTE_SECONDS = SESSION_COOKIE_AGE
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": int(os.environ.get("DANGOL_PASSWORD_MIN_LENGTH", "10"))}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Content-Security-Policy of every page (the API's reference page sets its own, stricter one): the app's own assets
# only, no inline script or style, no frames.
DANGOL_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
              "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
DANGOL_PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# A shared cache (Redis) for the API rate limits of several web processes: DANGOL_CACHE_URL=redis://host:6379/3.
if os.environ.get("DANGOL_CACHE_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["DANGOL_CACHE_URL"]}}
# Integration API: scopes of integration tokens, rate per token (an ApiToken may set its own), idempotency records.
REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"] = ["rest_framework.permissions.IsAuthenticated", "dangol.api.permissions.TokenScopes"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token"] = os.environ.get("DANGOL_API_TOKEN_RATE", REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"])
DANGOL_IDEMPOTENCY_HOURS = int(os.environ.get("DANGOL_IDEMPOTENCY_HOURS", "24"))
# Outbound webhooks: attempts before giving up, first retry delay (doubled each time, capped), request timeout.
DANGOL_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("DANGOL_WEBHOOK_MAX_ATTEMPTS", "8"))
DANGOL_WEBHOOK_RETRY_SECONDS = int(os.environ.get("DANGOL_WEBHOOK_RETRY_SECONDS", "30"))
DANGOL_WEBHOOK_RETRY_MAX_SECONDS = int(os.environ.get("DANGOL_WEBHOOK_RETRY_MAX_SECONDS", str(6 * 3600)))
DANGOL_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("DANGOL_WEBHOOK_TIMEOUT_SECONDS", "10"))
# --- end security-api ---
# --- campaigns ---
# What one message costs (KRW), for the ROI of campaigns and automations, per message type (sms, lms, mms, alimtalk,
# brand) or else per channel: DANGOL_MESSAGE_COST_KRW="sms=20,lms=50,mms=120,kakao=8".
DANGOL_MESSAGE_COST_KRW = {"sms": 20, "lms": 50, "mms": 120, "kakao": 8, "email": 1, "post": 600, "phone": 0}
for _pair in filter(None, os.environ.get("DANGOL_MESSAGE_COST_KRW", "").split(",")):
    _channel, _sep, _cost = _pair.partition("=")
    DANGOL_MESSAGE_COST_KRW[_channel.strip()] = int(_cost)
# The builder's live count on PostgreSQL stops after this long (a heavy rule tree must not hold the database).
DANGOL_SEGMENT_COUNT_TIMEOUT_MS = int(os.environ.get("DANGOL_SEGMENT_COUNT_TIMEOUT_MS", "15000"))
# --- end campaigns ---
# --- playbook ---
# Warehouse export (dangol.warehouse): the scheduled, pseudonymised export's directory (unset: no scheduled export),
# the key of the customer pseudonyms (default: derived from DANGOL_SECRET_KEY), how often, and how old a row must be
# before an incremental run takes it (so that a transaction still open at the start is not skipped).
WAREHOUSE_DIR = os.environ.get("DANGOL_WAREHOUSE_DIR", "")
WAREHOUSE_KEY = os.environ.get("DANGOL_WAREHOUSE_KEY", "")
WAREHOUSE_EVERY_HOURS = int(os.environ.get("DANGOL_WAREHOUSE_EVERY_HOURS", "24"))
WAREHOUSE_LAG_SECONDS = int(os.environ.get("DANGOL_WAREHOUSE_LAG_SECONDS", "60"))
WAREHOUSE_MEMORY_MB = int(os.environ.get("DANGOL_WAREHOUSE_MEMORY_MB", "1024"))  # DuckDB's, beyond it spills to disk
# Partner exports (dangol.partners): hours a download link works before its file is deleted.
PARTNER_EXPORT_HOURS = int(os.environ.get("DANGOL_PARTNER_EXPORT_HOURS", "72"))
# --- end playbook ---
# Names of the privacy API's enums in the OpenAPI schema (several serializers have a "kind" or a "source").
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update({
    "ConsentKindEnum": "dangol.customers.models.ConsentKind",
    "ConsentSourceEnum": "dangol.customers.models.ConsentSource",
    "PrivacyRequestKindEnum": "dangol.privacy.models.RequestKind",
    "PrivacyRequestStatusEnum": "dangol.privacy.models.RequestStatus",
    "PrivacyReceivedViaEnum": "dangol.privacy.models.ReceivedVia",
    "AccessReasonEnum": "dangol.privacy.models.AccessReasonCode",
})
# Query strings (search boxes: names, emails, percent-encoded) never reach the log; paths carry ids only.
LOGGING["filters"]["strip_query"] = {"()": "dangol.privacy.logfilters.StripQueryStrings"}
LOGGING["handlers"]["console"]["filters"] = [*LOGGING["handlers"]["console"]["filters"], "strip_query"]
