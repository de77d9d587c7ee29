"""Django settings for the Sansuha site.

Everything that differs between a laptop and production is read from the
environment through the small typed helpers below; a malformed value raises
ImproperlyConfigured at start-up instead of misbehaving later.

Environment variables:
    DJANGO_DEBUG           bool, default true (set false in production)
    DJANGO_SECRET_KEY      required unless DEBUG
    DJANGO_ALLOWED_HOSTS   comma-separated, default "localhost,127.0.0.1" when DEBUG
    DATABASE_URL           e.g. postgres://user@host:5432/sansuha; default SQLite db.sqlite3
    CELERY_BROKER_URL      default redis://127.0.0.1:6379/0
    SANSUHA_MEDIA_ROOT     where uploads, thumbnails, overlays and checkpoints live
    SANSUHA_UPLOAD_MAX_BYTES, SANSUHA_UPLOAD_MAX_PIXELS, SANSUHA_UPLOAD_MIN_SIDE  upload limits
    SANSUHA_STALE_SECONDS  the sweep re-queues a prediction pending or running this long (600)
    SANSUHA_TRAINING_HEARTBEAT_SECONDS, SANSUHA_TRAINING_STALE_SECONDS  a running training beats
                           every 30 s; the sweep fails one silent for 300 s (its worker was killed)

This module must never import torch (or ml/): the web process stays light.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

_UNSET = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    """The variable's value, or None when it is unset or empty."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str | object = _UNSET) -> str:
    value = _raw(name)
    if value is not None:
        return value
    if default is _UNSET:
        raise ImproperlyConfigured(f"Set the environment variable {name}.")
    return default  # type: ignore[return-value]


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use one of {sorted(_TRUE | _FALSE)}.")


def env_int(name: str, default: int) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", default=True)

if DEBUG:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY", "django-insecure-sansuha-dev-only")
else:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "gallery",
    "classifier",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sansuha_site.urls"

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
                "classifier.context_processors.active_model",
            ],
        },
    },
]

WSGI_APPLICATION = "sansuha_site.wsgi.application"
ASGI_APPLICATION = "sansuha_site.asgi.application"

# SQLite by default; PostgreSQL (or anything dj-database-url reads) whenever DATABASE_URL is set,
# e.g. postgres://postgres@127.0.0.1:5432/sansuha
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ko", _("Korean"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]  # the pages' CSS and JS

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

MEDIA_URL = "/media/"
SERVE_MEDIA = env_bool("SANSUHA_SERVE_MEDIA", False)
MEDIA_ROOT = Path(env_str("SANSUHA_MEDIA_ROOT", str(BASE_DIR / "media")))

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "gallery:list"
LOGOUT_REDIRECT_URL = "gallery:list"

# Uploads. Django itself must accept the request before our checks can say why a file is refused.
UPLOAD_MAX_BYTES = env_int("SANSUHA_UPLOAD_MAX_BYTES", 30 * 1024 * 1024)
UPLOAD_MAX_PIXELS = env_int("SANSUHA_UPLOAD_MAX_PIXELS", 120_000_000)  # decompression-bomb guard
UPLOAD_MIN_SIDE = env_int("SANSUHA_UPLOAD_MIN_SIDE", 64)
UPLOAD_MAX_ASPECT = 20.0  # handscrolls
UPLOAD_MAX_FILES_IN_ZIP = env_int("SANSUHA_UPLOAD_MAX_FILES_IN_ZIP", 200)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Celery: the broker is Redis. Results are written to the database by the tasks themselves, so no
# result backend is needed.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# An upload must not hang when the broker is down: fail fast, the sweep re-queues later.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
}
CLASSIFY_BATCH_SIZE = env_int("SANSUHA_CLASSIFY_BATCH", 16)  # pending predictions run together
CLASSIFY_LONG_SIDE = 1024  # images are classified and overlaid at this size at most
CLASSIFY_SOFT_TIME_LIMIT = env_int("SANSUHA_CLASSIFY_SOFT_TIME_LIMIT", 300)
CLASSIFY_STALE_AFTER = timedelta(seconds=env_int("SANSUHA_STALE_SECONDS", 600))
# A running training refreshes its heartbeat this often; the sweep fails one silent for longer than
# TRAINING_STALE_AFTER (its process was killed: nothing else would ever end it).
TRAINING_HEARTBEAT_SECONDS = env_int("SANSUHA_TRAINING_HEARTBEAT_SECONDS", 30)
TRAINING_STALE_AFTER = timedelta(seconds=env_int("SANSUHA_TRAINING_STALE_SECONDS", 300))
# Trainings run for minutes to hours: their own queue, so a deployment can give them their own worker
# (`celery worker -Q training`); `make run` and the compose file's worker consume both queues.
CELERY_TASK_ROUTES = {"classifier.tasks.train_model": {"queue": "training"}}
CELERY_BEAT_SCHEDULE = {
    "requeue-pending-predictions": {
        "task": "classifier.tasks.requeue_pending",
        "schedule": env_int("SANSUHA_SWEEP_SECONDS", 60),
    },
}

REST_FRAMEWORK = {
    # Token first: a refused request then answers 401 with "WWW-Authenticate: Token" (the first
    # class names the challenge). The session serves logged-in browsers: the site and /api/docs/.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 24,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"uploads": env_str("SANSUHA_UPLOAD_RATE", "120/hour")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Sansuha API",
    "DESCRIPTION": "Paintings, their predictions and the model versions that made them.",
    "VERSION": "1",
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files: no CDN at runtime.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Separate request and response components: a file is binary in a request (the docs then show
    # a file picker) and a URL in a response.
    "COMPONENT_SPLIT_REQUEST": True,
}

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", False)
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
