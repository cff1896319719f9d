"""Settings from the environment, with embedded defaults so one command runs the chat.

Unset `DATABASE_URL` means SQLite in the project folder; unset `REDIS_URL` means the
in-memory channel layer, which fans out inside one process only.
"""

import os
import re
import secrets
import sys
import warnings
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable ("1/true/yes/on" or "0/false/no/off")."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean, got {value!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated environment variable."""
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_rate(name: str, default: str) -> str:
    """Read a django-ratelimit rate ("<count>/<s|m|h|d>", e.g. "20/h"); empty is no limit."""
    value = os.environ.get(name, default).strip()
    if value and not re.fullmatch(r"\d+/\d*[smhd]", value):
        raise ImproperlyConfigured(f"{name} must be a rate like 20/h or empty, got {value!r}")
    return value


DEBUG = env_bool("DJANGO_DEBUG", False)
VAR_DIR = Path(os.environ.get("CHAT_VAR_DIR", BASE_DIR / "var"))


def local_secret_key() -> str:
    """A random key kept in var/secret_key, made on first use (for the embedded defaults)."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or local_secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
REGISTRATION_OPEN = env_bool("REGISTRATION_OPEN", True)
# Who a user can find by name (accounts.discovery): "prefix" (3 characters at least) or
# "exact" (the whole username only); at most USER_SEARCH_LIMIT results.
USER_DISCOVERY = os.environ.get("USER_DISCOVERY", "prefix")
if USER_DISCOVERY not in ("prefix", "exact"):
    raise ImproperlyConfigured('USER_DISCOVERY must be "prefix" or "exact"')
USER_SEARCH_LIMIT = int(os.environ.get("USER_SEARCH_LIMIT", "20"))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "csp",
    "ninja",
    "accounts",
    "keys",
    "messaging",
]

MIDDLEWARE = [
    "chatsite.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "chatsite.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"

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
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --- Database: SQLite by default, any Django database from DATABASE_URL. -------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Several processes may share one SQLite file: take the write lock up front and wait.
    # WAL: a commit costs one fsync (the rollback journal needs several) and readers do
    # not wait for the writer; synchronous=FULL keeps every commit on disk when it returns.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
    }
# lane realtime (issue 18 §1): PostgreSQL connections from Django's built-in pool
# (psycopg_pool); each worker's database thread and its HTTP requests borrow one and give
# it back. DB_POOL=0 turns it off (a connection per request or socket hop then).
DB_POOL = os.environ.get("DB_POOL", "1") == "1"
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DB_POOL:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": int(os.environ.get("DB_POOL_MAX", "8")),
        "timeout": 10,  # s to wait for a free connection before the request fails
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer: Redis when REDIS_URL is set, else one process in memory. -----------
# lane realtime (issue 18 §1); docs/protocol.md "Real-time layer".
REDIS_URL = os.environ.get("REDIS_URL", "")
# Events waiting per socket channel (in-process queues): past it a frame is dropped and
# only `sync` brings it back, so leave room for bursts.
CHANNEL_CAPACITY = int(os.environ.get("CHANNEL_CAPACITY", "10000"))
# REDIS_URL may list several hosts, space-separated: channels are sharded over them by
# name. For Sentinel or other redis-py options, set CHANNEL_LAYERS["default"]["CONFIG"]
# ["hosts"] as channels_redis documents it.
REDIS_HOSTS = [
    # socket_timeout None: redis-py >= 8 defaults to 5 s, which cuts idle pub/sub reads.
    {"address": url, "socket_timeout": None, "max_connections": 1000}
    for url in REDIS_URL.split()
]
# The design, for comparisons on the bench (docs/performance.md): chat (ours), pubsub
# (channels_redis's RedisPubSubChannelLayer) or core (channels_redis's RedisChannelLayer).
REALTIME_LAYER = os.environ.get("REALTIME_LAYER", "chat")
if REDIS_URL:
    # Pub/sub ignores Redis's logical databases: the prefix carries the first URL's, so
    # stacks on one server with databases of their own do not hear each other.
    _redis_db = urlparse(REDIS_URL.split()[0]).path.strip("/") or "0"
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "messaging.layer.ChatChannelLayer",
            "CONFIG": {
                "hosts": REDIS_HOSTS,
                "capacity": CHANNEL_CAPACITY,
                "prefix": f"chat{_redis_db}",
            },
        }
    }
    if REALTIME_LAYER == "pubsub":
        CHANNEL_LAYERS["default"] = {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": REDIS_HOSTS},
        }
    elif REALTIME_LAYER == "core":
        CHANNEL_LAYERS["default"] = {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": REDIS_HOSTS, "capacity": CHANNEL_CAPACITY, "group_expiry": 3600},
        }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL.split()[0],
            # One pool per process: Django builds a cache client per request under ASGI.
            "OPTIONS": {"pool_class": "chatsite.cache_pool.SharedConnectionPool"},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": CHANNEL_CAPACITY, "expiry": 60},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Accounts -------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

# Failed-login throttling (django-axes) on the pair (username, client address): failures
# from one address lock only that pair, so nobody can lock a victim out from elsewhere and
# one address (a NAT) cannot lock out everyone behind it. The client address is
# REMOTE_ADDR only (axes' default; daphne --proxy-headers sets it from nginx's
# X-Forwarded-For), never a header the client could choose.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("LOGIN_COOLOFF_HOURS", "0.25"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_VERBOSE = False

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# --- Protocol limits --------------------------------------------------------------------
MAX_FRAME_BYTES = int(os.environ.get("MAX_FRAME_BYTES", str(256 * 1024)))
# Active devices a user may have at once (PROTOCOL §6).
MAX_DEVICES = int(os.environ.get("MAX_DEVICES", "10"))
WS_RATE_PER_SECOND = float(os.environ.get("WS_RATE_PER_SECOND", "20"))
WS_RATE_BURST = int(os.environ.get("WS_RATE_BURST", "50"))
WS_FLOOD_CLOSE_AFTER = int(os.environ.get("WS_FLOOD_CLOSE_AFTER", "100"))
# Open WebSockets per user and per device (live Connection rows); one more is accepted and
# closed with 4429 after a `rate_limited` error frame.
MAX_SOCKETS_PER_USER = int(os.environ.get("MAX_SOCKETS_PER_USER", "20"))
MAX_SOCKETS_PER_DEVICE = int(os.environ.get("MAX_SOCKETS_PER_DEVICE", "10"))
SYNC_BATCH_LIMIT = 500
# Bodies outside /api/ (admin and page forms); counted on bytes received by
# chatsite.bodylimit, and Django's own cap on what it parses in memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", str(512 * 1024)))

# --- Rate limits (docs/protocol.md "Rate limits") ----------------------------------------
# django-ratelimit rates ("<count>/<s|m|h|d>"; empty turns one off) in fixed windows on the
# default cache (Redis with REDIS_URL, shared by the workers). Over the limit: 429
# `rate_limited` with Retry-After, and nothing done. Per client address (REMOTE_ADDR,
# IPv6 per /64) or per user. Harnesses that register or send in bulk raise them through
# the environment (scripts/devstack/stack.py BULK_LIMITS), never by editing these.
REGISTER_RATE = env_rate("REGISTER_RATE", "20/h")  # POST /api/users/ and /register/, per address
LOGIN_RATE = env_rate("LOGIN_RATE", "30/m")  # login attempts (API and form), per address
DEVICE_REGISTER_RATE = env_rate("DEVICE_REGISTER_RATE", "10/h")  # POST /api/devices/, per user
LINK_REQUEST_RATE = env_rate("LINK_REQUEST_RATE", "10/h")  # POST /api/link-requests/, per user
REST_SEND_RATE = env_rate("REST_SEND_RATE", "120/m")  # POST …/messages/, per user
RATELIMIT_FAIL_OPEN = True  # a cache that fails lets requests through (and is logged)

# --- Encrypted attachments (PROTOCOL §10.2; docs/protocol.md "Attachments") -------------
MAX_BLOB_BYTES = int(os.environ.get("MAX_BLOB_BYTES", str(128 * 2**20)))
BLOB_QUOTA_BYTES = int(os.environ.get("BLOB_QUOTA_BYTES", str(2 * 2**30)))
BLOB_UPLOAD_RATE = env_rate("BLOB_UPLOAD_RATE", "60/h")  # per user (see "Rate limits")
BLOB_UNNAMED_TTL = int(os.environ.get("BLOB_UNNAMED_TTL", str(24 * 3600)))  # seconds
# Storage files with no row are deleted once older than this (uploads in flight are kept).
BLOB_ORPHAN_GRACE = int(os.environ.get("BLOB_ORPHAN_GRACE", "3600"))  # seconds
# nginx's internal location of the blob directory (e.g. "/_blobs/"): downloads are then
# answered with X-Accel-Redirect (filesystem storage only).
BLOB_ACCEL_REDIRECT = os.environ.get("BLOB_ACCEL_REDIRECT", "")
BLOB_DIR = Path(os.environ.get("BLOB_DIR", VAR_DIR / "blobs"))
BLOB_S3_BUCKET = os.environ.get("BLOB_S3_BUCKET", "")
if BLOB_S3_BUCKET:
    BLOB_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": BLOB_S3_BUCKET,
            "endpoint_url": os.environ.get("BLOB_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("BLOB_S3_REGION") or None,
            "location": "blobs",
            "default_acl": None,
            "file_overwrite": True,  # names are random ids, never reused
            "querystring_auth": False,
        },
    }
else:
    BLOB_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": str(BLOB_DIR),
            "file_permissions_mode": 0o640,  # nginx reads them (group)
            "directory_permissions_mode": 0o750,
        },
    }

# --- Static files, security headers ----------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "blobs": BLOB_STORAGE,
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            # Hashed names when collecting, and once `collectstatic` wrote its manifest.
            if env_bool(
                "DJANGO_MANIFEST_STATIC",
                not DEBUG
                and ("collectstatic" in sys.argv or (STATIC_ROOT / "staticfiles.json").exists()),
            )
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = True
# Without collectstatic (development, tests) files come from the finders; no need to warn.
warnings.filterwarnings("ignore", message="No directory at")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],  # blob: decrypted attachment images
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
# Features the chat never uses, off for its pages and whatever they embed (features a
# browser does not know are left out: Chromium logs an error for each).
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "serial",
        "usb",
    )
)
CROSS_ORIGIN_RESOURCE_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
    # Load balancers may poll a worker directly over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]  # preload is an explicit opt-in

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

NINJA_PAGINATION_PER_PAGE = 50

from pythonjsonlogger.core import RESERVED_ATTRS as RESERVED_LOG_ATTRS  # noqa: E402

# Logs go to stdout; LOG_FORMAT=json (default unless DEBUG) gives one JSON object a line
# for log collectors. Nothing logs message content, keys, passwords, headers or bodies.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
            "reserved_attrs": [*RESERVED_LOG_ATTRS, "request", "scope"],
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["stdout"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "channels_redis": {"level": "INFO"},
        "daphne": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}
