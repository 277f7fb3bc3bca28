"""Settings of the sum service.

Every knob is read from the environment here, once, with a safe default; the configuration
table in docs/configuration.md lists them all. The service's own knobs live in the `SUMSERVICE`
dict, namespaced the way SimpleJWT keeps its own in `SIMPLE_JWT`.
"""

import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from api import limits
from sumservice.environment import (
    bind_address,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_rate,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent


# Where the service was started: start.sh and the Dockerfile pass the same HOST and PORT to
# gunicorn, so the default issuer names the address the service really answers on.
HOST, PORT = bind_address()

DEBUG = env_bool("DJANGO_DEBUG", False)
# Nothing signed with SECRET_KEY outlives a process (no sessions, no cookies: tokens have keys
# of their own), so a random per-process default is safe; set it to pin one.
SECRET_KEY = env_secret("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    # DRF's browsable API imports the auth models; no table of theirs is ever queried.
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    # Before rest_framework: its rest_framework/api.html overrides DRF's (the token box).
    "api",
    "rest_framework",
    # The OpenAPI schema, and Swagger UI and Redoc served from the sidecar's static files.
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    # Outermost, so that every answer is logged and counted, whoever gave it.
    "api.request_log.RequestLogMiddleware",
    "api.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Outside the body limit and the Host check, so that their refusals may not be framed either.
    "api.middleware.FrameProtectionMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "api.middleware.BodySizeLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "sumservice.urls"
WSGI_APPLICATION = "sumservice.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# No database: identities come from the token alone.
DATABASES: dict = {}

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False
# The endpoints are /auth and /sum exactly; a missing slash is not an error to redirect.
APPEND_SLASH = False

STATIC_URL = "static/"
# WhiteNoise serves the browsable API's CSS and JS straight from the installed apps, so the
# production server needs no collectstatic step and no separate web server for them.
WHITENOISE_USE_FINDERS = True

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"message": {"format": "%(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        # The request log's lines are JSON already (api/request_log.py).
        "requests": {"class": "logging.StreamHandler", "formatter": "message"},
        "null": {"class": "logging.NullHandler"},
    },
    "root": {"handlers": ["console"], "level": env_choice("DJANGO_LOG_LEVEL", "INFO", LOG_LEVELS)},
    "loggers": {
        "sumservice.requests": {"handlers": ["requests"], "level": "INFO", "propagate": False},
        # A Host outside DJANGO_ALLOWED_HOSTS is any client's to send: its 400 is in the request
        # log, not a traceback per request (Django's own advice for this logger).
        "django.security.DisallowedHost": {"handlers": ["null"], "propagate": False},
        # Likewise Django's own line for every 4xx ("Not Found: /x"): the request log has them.
        # An error (5xx) still logs its traceback.
        "django.request": {"level": "ERROR"},
    },
}

SUMSERVICE = {
    # Largest request body accepted, in bytes; one byte more answers 413.
    "MAX_BODY_BYTES": env_int("SUMSERVICE_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1),
    # Longest number literal and largest written exponent (api/limits.py); beyond them: 422.
    "MAX_NUMBER_LENGTH": env_int(
        "SUMSERVICE_MAX_NUMBER_LENGTH", limits.MAX_NUMBER_LENGTH, minimum=1
    ),
    "MAX_EXPONENT": env_int("SUMSERVICE_MAX_EXPONENT", limits.MAX_EXPONENT, minimum=0),
    # Sum with the compiled kernel when it is built; off: with the pure-Python path, the
    # reference (the same answers, several times slower).
    "SUM_KERNEL": env_bool("SUMSERVICE_SUM_KERNEL", True),
    # Tokens each worker remembers as verified, so that a client's next requests with the same
    # token skip the signature check (time claims are still checked on every request); 0: off.
    "TOKEN_CACHE_SIZE": env_int("SUMSERVICE_TOKEN_CACHE_SIZE", 1024),
    # Local state: the signing key made on first start when none is configured.
    "STATE_DIR": Path(env_str("SUMSERVICE_STATE_DIR", str(BASE_DIR / "var"))),
    # Signing keys in PEM, as text or as a file path (a mounted secret); PREVIOUS_KEYS holds
    # any number of keys still accepted (and published) after a rotation.
    "SIGNING_KEY": env_str("SUMSERVICE_JWT_PRIVATE_KEY", ""),
    "SIGNING_KEY_FILE": env_str("SUMSERVICE_JWT_PRIVATE_KEY_FILE", ""),
    "PREVIOUS_KEYS": env_str("SUMSERVICE_JWT_PREVIOUS_KEYS", ""),
    "PREVIOUS_KEYS_FILE": env_str("SUMSERVICE_JWT_PREVIOUS_KEYS_FILE", ""),
    # The shared secret, used only when SUMSERVICE_JWT_ALGORITHM is HS256.
    "HMAC_SECRET": env_secret("SUMSERVICE_JWT_SECRET"),
    # Serving (sumservice/asgi.py): a request whose body is at most this many bytes runs in the
    # worker's event loop; a larger one runs in one of the worker's threads for large requests,
    # so that the loop keeps answering the others meanwhile. Where the Python path sums, at most
    # limits.PYTHON_PATH_INLINE_BODY_BYTES (64 KiB) whatever this says.
    "INLINE_BODY_BYTES": env_int(
        "SUMSERVICE_INLINE_BODY_BYTES",
        limits.MAX_INLINE_BODY_BYTES,
        maximum=limits.MAX_INLINE_BODY_BYTES,
    ),
    "LARGE_REQUEST_THREADS": env_int("SUMSERVICE_LARGE_REQUEST_THREADS", 2, minimum=1),
    # Requests per client address to /auth, and per token subject to /sum; None: no limit.
    "AUTH_RATE": env_rate("SUMSERVICE_AUTH_RATE", "60/minute"),
    "SUM_RATE": env_rate("SUMSERVICE_SUM_RATE", "off"),
    # Peers whose X-Forwarded-For is believed (addresses or networks; `*`: any), so that the
    # client address is the one the nearest untrusted hop connected from.
    "TRUSTED_PROXIES": env_list("SUMSERVICE_TRUSTED_PROXIES", "127.0.0.1,::1"),
    # /auth takes two short strings: a body over this is refused (413) before it is read.
    "AUTH_MAX_BODY_BYTES": env_int("SUMSERVICE_AUTH_MAX_BODY_BYTES", 64 * 1024, minimum=1),
    # GET /metrics, and the counting behind it.
    "METRICS": env_bool("SUMSERVICE_METRICS", True),
    # Swagger UI at /docs/ and Redoc at /redoc/; false: 404 (the schema stays).
    "DOCS": env_bool("SUMSERVICE_DOCS", True),
}

# prometheus_client counts in files wherever this variable is set, even to nothing; set to
# nothing, it is unset, as every variable here (gunicorn.conf.py names a folder for it).
if not env_str("PROMETHEUS_MULTIPROC_DIR", ""):
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

for _proxy in SUMSERVICE["TRUSTED_PROXIES"]:
    try:
        _proxy == "*" or ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"SUMSERVICE_TRUSTED_PROXIES must list addresses or networks (or *), got {_proxy!r}"
        ) from None

# The rate limits' counts. With a Redis URL every replica shares them (Django's own backend).
# Without one, gunicorn.conf.py gives the instance's workers a private folder of their own
# (SUMSERVICE_CACHE_DIR) for a SQLite-backed cache: shared by the workers with no server to run,
# its incr one SQLite transaction, atomic across processes. Without either (the development
# server: one process), the process's memory.
CACHE_URL = env_str("SUMSERVICE_CACHE_URL", "")
CACHE_DIR = env_str("SUMSERVICE_CACHE_DIR", "")
if CACHE_URL:
    if not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
        # Not the URL itself: it may hold the server's password.
        scheme, found, _ = CACHE_URL.partition("://")
        raise ImproperlyConfigured(
            "SUMSERVICE_CACHE_URL must be a redis://, rediss:// or unix:// URL, got "
            + (f"a {scheme}:// one" if found else "one without a scheme")
        )
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "sumservice",
            # A Redis answers in a millisecond or two: one that takes longer is down. Each worker
            # waits that long once, then counts nothing for a few seconds (api/throttling.py);
            # redis-py's own defaults wait forever.
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }
elif CACHE_DIR:
    CACHES = {
        "default": {
            "BACKEND": "api.cache.SharedDiskCache",
            "LOCATION": CACHE_DIR,
            # SQLite's busy timeout; writes that meet a longer lock are retried by diskcache.
            "DATABASE_TIMEOUT": 0.1,
            # Counters are a few bytes each; well within a small /tmp (the k8s emptyDir: 64 MiB).
            "OPTIONS": {"size_limit": 16 * 1024 * 1024},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

SIMPLE_JWT = {
    "ALGORITHM": env_str("SUMSERVICE_JWT_ALGORITHM", "ES256"),
    "ISSUER": env_str("SUMSERVICE_ISSUER", f"http://{HOST}:{PORT}"),
    "AUDIENCE": env_str("SUMSERVICE_AUDIENCE", "sumservice"),
    "ACCESS_TOKEN_LIFETIME": timedelta(
        # At most 366 days: an access token is short-lived, and its `exp` stays a date.
        seconds=env_int("SUMSERVICE_ACCESS_TOKEN_LIFETIME", 3600, minimum=1, maximum=366 * 86400)
    ),
    # Clock skew, minutes at most: hours of it would keep expired tokens alive.
    "LEEWAY": env_int("SUMSERVICE_JWT_LEEWAY", 0, maximum=3600),
    "USER_ID_CLAIM": "sub",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "AUTH_TOKEN_CLASSES": ("api.tokens.SumAccessToken",),
}

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "api.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "api.negotiation.ContentNegotiation",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "EXCEPTION_HANDLER": "api.exception_handler.exception_handler",
    # Requests without a token have no user at all rather than Django's AnonymousUser.
    "UNAUTHENTICATED_USER": None,
    # api.throttling's scopes; None turns one off.
    "DEFAULT_THROTTLE_RATES": {
        "auth": SUMSERVICE["AUTH_RATE"],
        "sum": SUMSERVICE["SUM_RATE"],
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# --- Exploring: the OpenAPI schema, Swagger UI and Redoc. The schema's content is
# described in api/schema.py; these are drf-spectacular's settings.
SPECTACULAR_SETTINGS = {
    "TITLE": "sumservice",
    "DESCRIPTION": (
        "Trade a username and a password for a signed JWT at `POST /auth`, then `POST` any JSON"
        " document to `/sum` with it (`Authorization: Bearer <token>`) for the SHA-256 of the"
        " exact sum of every number in it."
    ),
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.0.3",
    # The schema does not describe its own endpoint (nor the docs pages).
    "SERVE_INCLUDE_SCHEMA": False,
    # In the order a newcomer uses them (urls.py's order), not alphabetical.
    "SORT_OPERATIONS": False,
    "TAGS": [
        {"name": "tokens", "description": "Get a token; verify tokens elsewhere (OIDC)."},
        {"name": "sum", "description": "Sum the numbers of a JSON document."},
        {"name": "operations", "description": "For load balancers and orchestrators."},
    ],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.require_request_bodies",
        "api.schema.describe_plain_views",
    ],
    # Swagger UI and Redoc from the drf-spectacular-sidecar package: no request to a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {
        "deepLinking": True,
        # Swagger UI would otherwise send the schema to validator.swagger.io for a badge.
        "validatorUrl": None,
    },
}

# Django refuses bodies over this when request.body is read; the middleware answers 413 first.
DATA_UPLOAD_MAX_MEMORY_SIZE = SUMSERVICE["MAX_BODY_BYTES"]
