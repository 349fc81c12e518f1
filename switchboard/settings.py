"""Switchboard settings: every value that varies between deployments is read from the
environment here, and nowhere else. See the configuration table in README.md."""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from core import redis_urls

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# ---------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
_INSECURE_KEY = "insecure-development-key-do-not-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_INSECURE_KEY)
if not DEBUG and (SECRET_KEY == _INSECURE_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random string of at least 50 characters when DEBUG is off."
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    # Swagger UI's and ReDoc's files, served from STATIC_URL like ours (no CDN).
    "drf_spectacular_sidecar",
    "django_celery_beat",
    # In layer order, bottom first (docs/architecture.md); ``core`` is a plain package.
    "realtime",
    "profiles",
    "accounts",
    "relations",
    "conversations",
    "presence",
    "matching",
    "notifications",
    "moderation",
    "ops",
    "live",
    "web",
]

MIDDLEWARE = [
    # First, so it times and counts every response, errors included (GET /metrics).
    "ops.middleware.request_metrics",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A session of a suspended or banned account ends at its next request (accounts, moderation).
    "accounts.middleware.restricted_sessions",
    # A moderator's warning shown once on the user's next page (docs/subsystems/moderation.md).
    "moderation.middleware.warnings_shown",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy of the HTML pages (web/middleware.py, below).
    "web.middleware.content_security_policy",
    # Last, as django-axes asks: turns a locked-out log-in into its 429 (accounts/lockout.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "switchboard.urls"
ASGI_APPLICATION = "switchboard.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]

# ---------------------------------------------------------------------------
# Database (PostgreSQL in production, a SQLite file by default)
# ---------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'switchboard.sqlite3'}")
}
# PostgreSQL: Django's native psycopg connection pool, a fixed number of connections per
# process (docs/deployment.md, "Connection budget"). Under ASGI every thread of the database
# bridge would otherwise keep a persistent connection of its own, without bound (a process
# held 50-60 after a few hundred requests, and the server's 100 ran out). Each database call
# borrows a connection and gives it back when Django closes it (after every bridge call and
# request: CONN_MAX_AGE 0 with a pool). The pool checks a connection before lending it, so a
# PostgreSQL restart fails no request (DB_POOL_CHECK; one empty query per borrow).
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # With a pool, Django passes CONN_HEALTH_CHECKS to it as its ``check``.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_POOL_CHECK", default=True)
    DB_POOL = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=8),
        # Seconds a caller waits for a free connection before its request fails.
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        # An idle connection above min_size is closed after this many seconds.
        "max_idle": env.float("DB_POOL_MAX_IDLE", default=60.0),
    }
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"]["pool"] = DB_POOL
    # Visible in pg_stat_activity: which process holds which connection.
    DATABASES["default"]["OPTIONS"]["application_name"] = env.str(
        "DB_APPLICATION_NAME", default=f"switchboard-{os.getpid()}"
    )
# Behind a pooler that lends a server connection per transaction (PgBouncer's
# ``pool_mode = transaction``, docs/deployment.md "PgBouncer"): DB_POOLER=transaction. Nothing
# may then outlive a transaction on a connection: no prepared statements, no session SET
# (the writer's generic plans), no server-side cursor (``QuerySet.iterator()`` declares one
# that a later fetch would look for on another server connection). Switchboard takes no
# session advisory lock, LISTENs to nothing and makes no temporary table, pooled or not.
DB_POOLER = env.str("DB_POOLER", default="")
if DB_POOLER not in ("", "transaction"):
    raise ImproperlyConfigured(f'DB_POOLER must be "" or "transaction", not {DB_POOLER!r}')
if DB_POOLER == "transaction":
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
# The event loop's own connections (core.db.LoopConnection: the message writer's, the socket
# opening's reads) prepare their few statements on first use, so PostgreSQL plans each once.
# Off by default behind a transaction pooler: PgBouncer keeps protocol-level prepared
# statements across its server connections only from 1.21 (``max_prepared_statements``), and
# Debian 12 ships 1.18. Generic plans (a session setting) stay off behind one whatever this says.
DB_LOOP_PREPARE = env.bool("DB_LOOP_PREPARE", default=DB_POOLER != "transaction")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out log-in before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
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
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# ---------------------------------------------------------------------------
# Redis: two roles. The bus (channel layer, Celery broker, pool, presence, rate limits,
# rankings) must never evict; the cache may. In development they may be one server with
# two database numbers; in production they are two servers (docs/deployment.md).
# ---------------------------------------------------------------------------
# REDIS_URL lists the bus servers: one URL, several (shards, comma-separated) and/or
# Sentinel-managed masters (sentinel://s1:26379,s2:26379,s3:26379/<master>/<db>); the
# syntax, and which keys live on which shard, in docs/deployment.md ("The bus: shards and
# Sentinel") and core/redis_urls.py.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
try:
    BUS_SERVERS = redis_urls.parse(REDIS_URL)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None


def _next_db(servers: list[redis_urls.Server]) -> str:
    """Return the bus' first server with the next database number (the default cache)."""
    return servers[0].with_db(servers[0].db + 1).text()


def _gc_thresholds(raw: list[str]) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in raw)
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise ImproperlyConfigured(f"GC_THRESHOLDS must be three positive integers, not {raw}")
    return values


# The collector's thresholds in a web process (``gc.set_threshold``, set in asgi.py): young
# collections as Python's default (700, 10: pauses under a millisecond), full ones ten times
# rarer than its default 10. A full collection walks every object of every socket, 60-330 ms
# with 1,500-2,500 sockets; the default ran ten in a reconnect storm (2 s of server a's CPU)
# and a few a minute under typical load (docs/benchmarks.md).
GC_THRESHOLDS = _gc_thresholds(env.list("GC_THRESHOLDS", default=["700", "10", "100"]))

CACHE_URL = env.str("CACHE_URL", default="") or _next_db(BUS_SERVERS)
# Every key Switchboard writes to the bus starts with this, so tests and several
# deployments can share one server and clean up only their own keys.
REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", default="sb")
# redis-py pools wait up to this long for a free connection instead of raising.
REDIS_POOL_MAX_CONNECTIONS = env.int("REDIS_POOL_MAX_CONNECTIONS", default=64)
REDIS_POOL_TIMEOUT = env.float("REDIS_POOL_TIMEOUT", default=5.0)


def _cache(url: str) -> dict:
    """django-redis for CACHE_URL: one server (DefaultClient), shards (ShardClient, which
    spreads keys over them by hash), or one Sentinel-managed master (SentinelClient)."""
    try:
        servers = redis_urls.parse(url, name="CACHE_URL")
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None
    options: dict = {
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        "CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool",
        "CONNECTION_POOL_KWARGS": {
            "max_connections": REDIS_POOL_MAX_CONNECTIONS,
            "timeout": REDIS_POOL_TIMEOUT,
        },
        "SOCKET_CONNECT_TIMEOUT": 2,
        "SOCKET_TIMEOUT": 2,
        "COMPRESSOR": "django_redis.compressors.zlib.ZlibCompressor",
        # The cache is disposable (docs/subsystems/caching.md, "When the cache Redis is
        # down"): a failed read is a miss (sessions fall back to the database), a failed
        # write is skipped, so an outage logs nobody out and fails no request.
        "IGNORE_EXCEPTIONS": True,
    }
    location: str | list[str]
    if any(s.is_sentinel for s in servers):
        if len(servers) > 1:
            raise ImproperlyConfigured("CACHE_URL: one Sentinel master, or direct URLs as shards")
        (server,) = servers
        # django-redis' Sentinel client: the location names the master, SENTINELS the way
        # to it (its own factory asks them; redis-py's non-blocking Sentinel pool).
        auth = f":{server.password}@" if server.password is not None else ""
        location = f"redis://{auth}{server.master_name}/{server.db}"
        options.update(
            CLIENT_CLASS="django_redis.client.SentinelClient",
            CONNECTION_FACTORY="django_redis.pool.SentinelConnectionFactory",
            CONNECTION_POOL_CLASS="redis.sentinel.SentinelConnectionPool",
            SENTINELS=list(server.sentinels),
            SENTINEL_KWARGS={"socket_timeout": 1, "socket_connect_timeout": 1},
        )
        options["CONNECTION_POOL_KWARGS"] = {"max_connections": REDIS_POOL_MAX_CONNECTIONS}
    elif len(servers) > 1:
        location = [s.url for s in servers]
        options["CLIENT_CLASS"] = "django_redis.client.ShardClient"
    else:
        location = servers[0].url
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
        "OPTIONS": options,
    }


CACHES = {"default": _cache(CACHE_URL)}
# Each ignored error is logged to this logger, which LOGGING rate-limits (one WARNING line
# per CACHE_ERROR_LOG_SECONDS, core/logfilter.py) instead of a traceback per call.
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "core.cache.outage"
CACHE_ERROR_LOG_SECONDS = env.float("CACHE_ERROR_LOG_SECONDS", default=60.0)
# The same for the failures of a PostgreSQL or bus Redis outage (logged at most at ERROR).
OUTAGE_LOG_SECONDS = env.float("OUTAGE_LOG_SECONDS", default=10.0)

# Sessions survive a flushed or evicted cache: the database is the truth.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# ---------------------------------------------------------------------------
# Channels: the Redis pub/sub layer. The core layer (lists + BZPOPMIN) saturated near
# 1,000 messages/s here and dropped messages; see docs/benchmarks.md. Each process keeps
# one publishing connection (behind a lock) and one subscriber connection per host, so the
# pool never grows past two connections.
# ---------------------------------------------------------------------------
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "core.layer.ChannelLayer",
        "CONFIG": {
            # One entry per bus server: channels-redis puts each group's channel on the
            # server crc32(name) * N // 4096 (and opens a Sentinel pool for a master).
            "hosts": [redis_urls.channel_layer_host(s, max_connections=4) for s in BUS_SERVERS],
            "prefix": f"{REDIS_KEY_PREFIX}:cl:",
        },
    }
}

# ---------------------------------------------------------------------------
# Celery (broker on the bus Redis; schedules in the database via django-celery-beat)
# ---------------------------------------------------------------------------
# The broker is the first bus server (kombu's redis transport holds one server; its
# Sentinel form lists the sentinels, ``;``-separated, with the master in the options).
CELERY_BROKER_URL, _broker_options = redis_urls.celery_broker(BUS_SERVERS[0])
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_POOL_LIMIT = 10
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": f"{REDIS_KEY_PREFIX}:celery:",
    "visibility_timeout": 3600,
    # kombu's own redis pool per channel; producers wait on CELERY_BROKER_POOL_LIMIT.
    "max_connections": REDIS_POOL_MAX_CONNECTIONS,
    **_broker_options,
}
# django-celery-beat's database scheduler, plus a heartbeat key per tick (GET /readyz).
CELERY_BEAT_SCHEDULER = "ops.beat:HeartbeatScheduler"
# Workers log through LOGGING below (key=value, with the task name and id in task context).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

# ---------------------------------------------------------------------------
# Abuse limits (docs/security.md). Log-in lock-out: django-axes counts failed log-ins per
# account and address in PostgreSQL (every log-in path: /api/auth/token, /api/auth/session,
# /accounts/login/, the admin's); past AXES_FAILURE_LIMIT that pair is refused (429) for
# AXES_COOLOFF_MINUTES, a success resets the count. Per account *and* address, so a stranger
# cannot lock someone out of their own account from elsewhere.
# ---------------------------------------------------------------------------
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# No "AXES: BEGIN version ..." banner from every process at start-up.
AXES_VERBOSE = False
# Request rates per scope ("N/second|minute|hour|day"), counted in the cache by
# core.throttles.ScopedThrottle: per address for log-in and sign-up (the client is anonymous),
# per user for the rest. Past the rate: 429 with Retry-After (REST: the error body). An
# empty rate turns a scope off.
THROTTLE_RATES = {
    # POST /api/auth/token, POST /api/auth/session, POST /accounts/login/, POST /admin/login/
    "login": env.str("THROTTLE_LOGIN", default="20/min"),
    # POST /api/auth/signup, POST /accounts/signup/
    "signup": env.str("THROTTLE_SIGNUP", default="10/hour"),
    # POST /api/auth/ws-ticket
    "ws_ticket": env.str("THROTTLE_WS_TICKET", default="30/min"),
    # GET /api/users/<id>/profile (a stranger's profile: no enumeration of every user)
    "profile_read": env.str("THROTTLE_PROFILE_READ", default="120/min"),
}

# ---------------------------------------------------------------------------
# REST API
# ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's, refusing a suspended or banned account (accounts/restrictions.py).
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Views name a scope of THROTTLE_RATES (``throttle_scope``); unnamed ones are not throttled.
    "DEFAULT_THROTTLE_CLASSES": ["core.throttles.ScopedThrottle"],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # DRF's three, with its JSON parser made to refuse over-deep nesting (core.api).
    "DEFAULT_PARSER_CLASSES": [
        "core.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Switchboard API",
    "DESCRIPTION": "REST API of Switchboard. The WebSocket protocol is in docs/protocol.md.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ and /api/redoc/ load their scripts from drf-spectacular-sidecar's static
    # files (served by the app, switchboard/asgi.py), never from a CDN: the docs work
    # offline and run the pinned version, not whatever a CDN's @latest is today.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Request bodies are JSON: the views read typed values (an integer id, a list of
    # interests), which a form body cannot carry. The form parsers stay for the string-only
    # log-in endpoints (`curl -d username=...`), undocumented.
    "PARSER_WHITELIST": ["core.api.JSONParser"],
    # A PATCH body keeps its required fields (PATCH /api/messages/{id} needs ``body``);
    # partial ones declare their fields optional themselves (ProfileUpdate).
    "COMPONENT_SPLIT_PATCH": False,
    # Every operation documents its error responses (core.api, docs/protocol.md "Errors").
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema_error_responses",
    ],
}

# ---------------------------------------------------------------------------
# Bounds: every limit Switchboard enforces, in one table (documented in docs/limits.md).
# ---------------------------------------------------------------------------
LIMITS = {
    "INTERESTS_PER_USER": 20,
    "INTEREST_MAX_LENGTH": 50,
    "DISPLAY_NAME_MAX_LENGTH": 60,
    "INTEREST_SEARCH_RESULTS": 20,
    # The most interests one search may ask for (``interest_list(limit=...)``).
    "INTEREST_SEARCH_MAX": 100,
    # Browser app: people found by GET /api/users?q= (new conversation dialog).
    "USER_SEARCH_RESULTS": 20,
    "MESSAGE_MAX_CHARS": env.int("LIMIT_MESSAGE_MAX_CHARS", default=4000),
    "CLIENT_ID_MAX_CHARS": 64,
    # Most WebSocket sends stored in one transaction by a process' group commit
    # (conversations/writer.py); more wait for the next batch.
    "MESSAGE_BATCH_MAX": 500,
    "GROUP_MAX_MEMBERS": env.int("LIMIT_GROUP_MAX_MEMBERS", default=1000),
    "GROUP_TITLE_MAX_CHARS": 120,
    # Consent: messages a requester may send in a direct conversation the other side has
    # not accepted yet (they read them to decide); more: `request_limit`.
    "REQUEST_MESSAGES_MAX": env.int("LIMIT_REQUEST_MESSAGES_MAX", default=5),
    "HISTORY_PAGE_DEFAULT": 50,
    "HISTORY_PAGE_MAX": 200,
    # Message search (GET /api/search, docs/subsystems/search.md): the query's length in
    # characters, and the results per page.
    "SEARCH_QUERY_MAX_CHARS": 200,
    "SEARCH_PAGE_DEFAULT": 20,
    "SEARCH_PAGE_MAX": 50,
    "CONVERSATION_LIST_MAX": 200,
    # Resume: past this many missed messages in one conversation the server says
    # "too_far" and the client re-fetches by REST.
    "RESUME_MAX_MESSAGES": env.int("LIMIT_RESUME_MAX_MESSAGES", default=500),
    "RESUME_MAX_CONVERSATIONS": 500,
    # Resume of edits and deletions: past this many changed messages in one conversation
    # since the client's change cursor the server says "changes_too_far" and the client
    # re-reads the messages it shows by REST.
    "RESUME_MAX_CHANGES": env.int("LIMIT_RESUME_MAX_CHANGES", default=500),
    # WebSocket frames
    "WS_FRAME_MAX_BYTES": 16 * 1024,
    "WS_RATE_PER_SECOND": env.float("LIMIT_WS_RATE_PER_SECOND", default=20.0),
    "WS_RATE_BURST": env.int("LIMIT_WS_RATE_BURST", default=60),
    "WS_TICKET_TTL_SECONDS": 30,
    # A request frame's ``ref`` (the client's correlation id).
    "WS_REF_MAX_CHARS": 64,
    # Sequenced events that arrive before the client's ``sync`` wait, per connection; past
    # this they are dropped and fetched as a gap after the sync.
    "WS_PRESYNC_BUFFER_MAX": 1000,
    # How long a connection holds pushes past a gap for the missing ones to arrive (pushes
    # of two server processes may cross) before it reads the gap from PostgreSQL.
    "MESSAGE_REORDER_WAIT_SECONDS": 0.05,
    # Events decoded once per process and shared by its sockets (core/layer.py): enough for
    # every event still being handed to local consumers.
    "LAYER_DECODED_CACHE_MAX": 256,
    # A group no local socket listens to any more stays subscribed this long (core/layer.py):
    # a client reconnecting (a reload, a reconnect storm) finds its groups still subscribed,
    # and the unsubscribes of many closing sockets are one command.
    "LAYER_UNSUBSCRIBE_LINGER_SECONDS": env.float(
        "LIMIT_LAYER_UNSUBSCRIBE_LINGER_SECONDS", default=10.0
    ),
    # Live sockets per user over all server processes (counted from presence); more: close
    # 4409. Counted and registered in one script at connect (presence/lua/admit.lua), so it
    # holds under racing connects.
    "WS_CONNECTIONS_PER_USER": env.int("LIMIT_WS_CONNECTIONS_PER_USER", default=20),
    # Presence (docs/subsystems/presence.md). A connection stays alive TTL seconds after its
    # server process last refreshed it (every TTL / 3, pings or not); the sweep runs every
    # SWEEP seconds, so a dead server's sockets stop counting TTL after its last refresh and
    # its users go offline at most TTL + SWEEP seconds after it (20 s; issue #4: <= 60).
    "PRESENCE_TTL_SECONDS": env.float("LIMIT_PRESENCE_TTL_SECONDS", default=15.0),
    "PRESENCE_SWEEP_SECONDS": env.float("LIMIT_PRESENCE_SWEEP_SECONDS", default=5.0),
    "PRESENCE_SWEEP_BATCH": 500,
    # The last connection closed: offline is announced only after this (a reload is silent).
    "PRESENCE_OFFLINE_GRACE_SECONDS": env.float(
        "LIMIT_PRESENCE_OFFLINE_GRACE_SECONDS", default=5.0
    ),
    # Profile.last_seen is written at most once per this many seconds per user while online.
    "PRESENCE_LAST_SEEN_WRITE_SECONDS": env.int(
        "LIMIT_PRESENCE_LAST_SEEN_WRITE_SECONDS", default=120
    ),
    "PRESENCE_QUERY_MAX_USERS": 200,
    # Conversations bigger than this do not push presence to their members (they ask).
    "PRESENCE_PUSH_MAX_MEMBERS": env.int("LIMIT_PRESENCE_PUSH_MAX_MEMBERS", default=100),
    # Notifications for people who are away (docs/subsystems/notifications.md): a member with
    # no live connection for NOTIFY_AWAY_SECONDS and unread messages that came while away is
    # told once per absence; beat looks for them every NOTIFY_SCAN_SECONDS.
    "NOTIFY_AWAY_SECONDS": env.float("LIMIT_NOTIFY_AWAY_SECONDS", default=900.0),
    "NOTIFY_SCAN_SECONDS": env.float("LIMIT_NOTIFY_SCAN_SECONDS", default=60.0),
    # Only conversations with a message in the last NOTIFY_LOOKBACK_SECONDS are looked at
    # (the scan reads the conv_activity index, never every membership).
    "NOTIFY_LOOKBACK_SECONDS": env.int("LIMIT_NOTIFY_LOOKBACK_SECONDS", default=7 * 86400),
    # Users notified per scan; the rest wait for the next one.
    "NOTIFY_SCAN_BATCH": 200,
    # What one digest shows: conversations, first lines of each, characters per line.
    "NOTIFY_DIGEST_CONVERSATIONS": 10,
    "NOTIFY_DIGEST_LINES": 3,
    "NOTIFY_DIGEST_LINE_CHARS": 200,
    # Web Push subscriptions kept per user (one per browser / device); the oldest goes.
    "PUSH_SUBSCRIPTIONS_PER_USER": 10,
    "PUSH_ENDPOINT_MAX_CHARS": 2000,
    # How long a push service keeps an undelivered push (the TTL header, seconds).
    "PUSH_TTL_SECONDS": 86400,
    # One push request to a push service, seconds.
    "PUSH_TIMEOUT_SECONDS": 10.0,
    # Typing (docs/subsystems/typing.md): frames over the rate are dropped; indicators expire
    # on receivers after EXPIRE seconds unless "start" is re-sent (every RESEND seconds).
    "TYPING_RATE_PER_SECOND": env.float("LIMIT_TYPING_RATE_PER_SECOND", default=1.0),
    "TYPING_RATE_BURST": env.int("LIMIT_TYPING_RATE_BURST", default=4),
    "TYPING_RESEND_SECONDS": 3,
    "TYPING_EXPIRE_SECONDS": 6,
    # A connection re-checks its membership of a conversation it types in after this long
    # (at once if it stopped listening to it).
    "TYPING_MEMBERSHIP_CHECK_SECONDS": 300,
    # A process' copy of a group's members serves typing (which carries no members version)
    # this long; then it is read again (conversations/members.py). Events that carry a
    # version are checked against a copy at least as new, whatever its age.
    "MEMBERS_RECHECK_SECONDS": 2,
    # Member ids a process keeps in those copies, over all conversations (the oldest go).
    "MEMBERS_CACHE_MAX_IDS": 200_000,
    # Meet (docs/subsystems/matching.md, issue #5). A waiting ticket lives TTL seconds unless
    # the client enters again (every REFRESH seconds); its index traces live GRACE longer so
    # the sweep can remove them. Relaxation: after the first value a shared interest is no
    # longer needed, after the second the region preference is dropped.
    "MATCH_TICKET_TTL_SECONDS": env.int("LIMIT_MATCH_TICKET_TTL_SECONDS", default=120),
    "MATCH_TICKET_REFRESH_SECONDS": 40,
    # How often a waiting client asks ``match.waiting`` (the count of people who could
    # match, the countdown to the next widening): cheap, Redis only, a few O(1) reads.
    "MATCH_STATUS_REFRESH_SECONDS": 5,
    # Rows of GET /api/meet/blocks (the people I blocked, newest first).
    "BLOCK_LIST_MAX": 500,
    "MATCH_TRACE_GRACE_SECONDS": 60,
    "MATCH_RELAX_AFTER_SECONDS": [
        int(s) for s in env.list("LIMIT_MATCH_RELAX_AFTER_SECONDS", default=["15", "30"])
    ],
    # Candidates read per index list (the K longest waiting) and exact re-scores per decision.
    "MATCH_CANDIDATES_PER_LIST": 32,
    "MATCH_REFINE_CANDIDATES": 4,
    "MATCH_POOL_MAX": env.int("LIMIT_MATCH_POOL_MAX", default=100_000),
    "MATCH_RECENT_PARTNER_SECONDS": env.int("LIMIT_MATCH_RECENT_PARTNER_SECONDS", default=1800),
    # A room still open after this long is ended by the sweep (reason "expired").
    "MATCH_MAX_SECONDS": 4 * 3600,
    "MATCH_RATE_PER_MINUTE": env.int("LIMIT_MATCH_RATE_PER_MINUTE", default=10),
    "MATCH_RATE_WINDOW_SECONDS": 60,
    # Between the pool's decision and the match row: if the deciding process dies in
    # between, both users may enter again after this.
    "MATCH_PENDING_SECONDS": 30,
    # A conflicting match.enter that finds the match still being recorded waits this long
    # for its id, so the conflict reply always names the match.
    "MATCH_CONFLICT_WAIT_SECONDS": 2.0,
    # A match member whose last Meet connection has been gone this long (closed, or its
    # web process killed) has left: the sweep ends the match, reason partner_left.
    "MEET_PARTNER_GRACE_SECONDS": env.float("LIMIT_MEET_PARTNER_GRACE_SECONDS", default=5.0),
    "MATCH_SAY_MAX_CHARS": 1000,
    "MATCH_SDP_MAX_CHARS": 12_000,
    "MATCH_ICE_MAX_CHARS": 1000,
    "MATCH_SDP_MID_MAX_CHARS": 64,
    "MATCH_ICE_UFRAG_MAX_CHARS": 256,
    "MATCH_REPORT_TEXT_MAX_CHARS": 1000,
    # A room's record for reports (matching/roomlog.py): the last signals' metadata and the
    # last text lines, copied into a report only when its reporter attaches them.
    "MATCH_SIGNAL_LOG_MAX": 100,
    "MATCH_ROOM_LINES_MAX": 20,
    # Moderation (docs/subsystems/moderation.md): a moderator's reason, the longest suspension.
    "MODERATION_REASON_MAX_CHARS": 1000,
    "MODERATION_SUSPEND_MAX_SECONDS": 365 * 86400,
    "MATCH_SWEEP_SECONDS": env.float("LIMIT_MATCH_SWEEP_SECONDS", default=2.0),
    "MATCH_SWEEP_BATCH": 500,
    # Trending interests: one sorted set per UTC day, kept this many days.
    "TRENDING_DAYS_KEPT": 8,
    "TRENDING_TOP_MAX": 100,
    "TURN_CREDENTIAL_TTL_SECONDS": env.int("LIMIT_TURN_CREDENTIAL_TTL_SECONDS", default=6 * 3600),
}

# ---------------------------------------------------------------------------
# Meet / WebRTC (docs/subsystems/webrtc.md): ICE servers handed to clients. TURN credentials
# follow the coturn REST convention (use-auth-secret / static-auth-secret = MEET_TURN_SECRET).
# ---------------------------------------------------------------------------
# No STUN by default: a self-hosted deployment names its own (coturn answers STUN too);
# peers on one host or LAN connect with host candidates alone.
MEET_STUN_URLS = env.list("MEET_STUN_URLS", default=[])
MEET_TURN_URLS = env.list("MEET_TURN_URLS", default=[])
MEET_TURN_SECRET = env.str("MEET_TURN_SECRET", default="")

# ---------------------------------------------------------------------------
# Time to live of what Switchboard keeps in Redis, in seconds: one table
# (docs/subsystems/caching.md). Cache entries may also be evicted earlier (allkeys-lru);
# bus entries live exactly this long unless refreshed. Owners read their value from here
# or from the LIMITS entry named beside it.
# ---------------------------------------------------------------------------
TTLS = {
    # cache Redis
    "PROFILE_PUBLIC": env.int("TTL_PROFILE_PUBLIC", default=3600),  # deleted on change too
    "INTEREST_LIST": env.int("TTL_INTEREST_LIST", default=60),  # popularity may lag this
    # A cached value past its TTL is still served for this long while one caller recomputes.
    "CACHE_STALE_GRACE": 60,
    # The recompute lock of one cached value: a recomputation longer than this lets a
    # second one start.
    "CACHE_RECOMPUTE_LOCK": 10,
    # bus Redis
    "POOL_TICKET": LIMITS["MATCH_TICKET_TTL_SECONDS"],
    "PRESENCE": LIMITS["PRESENCE_TTL_SECONDS"],
    "TRENDING_DAY": LIMITS["TRENDING_DAYS_KEPT"] * 86400,
    "LIVE_STATS": 60,  # the last published stats, for a client that subscribes
    "WS_PROCESS_COUNT": 60,  # a web process' open-connection count (GET /ops/stats)
    "BEAT_HEARTBEAT": 600,
    # A Meet room's record for reports (matching/roomlog.py): re-armed by each write while
    # the room is open, then cut to the short window once the match ends.
    "ROOM_RECORD": env.int("TTL_ROOM_RECORD", default=900),
    "ROOM_RECORD_AFTER_END": env.int("TTL_ROOM_RECORD_AFTER_END", default=300),
}

# ---------------------------------------------------------------------------
# Scheduled work (docs/subsystems/live.md): periods of the periodic tasks, in seconds.
# Declared once in ops/schedules.py and installed into django-celery-beat's tables
# by `manage.py bootstrap`.
# ---------------------------------------------------------------------------
LIVE = {
    "STATS_SECONDS": env.int("LIVE_STATS_SECONDS", default=5),
    "CACHE_WARM_SECONDS": env.int("LIVE_CACHE_WARM_SECONDS", default=300),
    # Profiles active in the last ACTIVE_MINUTES that each warm-up puts in the cache; the
    # warm-up before the peak hour (UTC) takes PEAK_PROFILES.
    "CACHE_WARM_ACTIVE_MINUTES": 30,
    "CACHE_WARM_PROFILES": env.int("LIVE_CACHE_WARM_PROFILES", default=1000),
    "CACHE_WARM_PEAK_PROFILES": env.int("LIVE_CACHE_WARM_PEAK_PROFILES", default=10_000),
    "PEAK_HOUR_UTC": env.int("LIVE_PEAK_HOUR_UTC", default=18),
    "PEAK_LEAD_MINUTES": 15,
    "CLEANUP_SECONDS": env.int("LIVE_CLEANUP_SECONDS", default=60),
    "CLEANUP_SCAN_COUNT": 500,
    "TRENDING_TOP": 10,
    # messages_last_minute reads at most this many of the newest message rows.
    "MESSAGES_SCAN_MAX": 100_000,
}

# ---------------------------------------------------------------------------
# Email and Web Push (docs/subsystems/notifications.md). Under DEBUG (make run) mail is
# written to files in var/mail/ and a VAPID key pair is generated in var/; in production
# EMAIL_* name the SMTP server and VAPID_* the push key pair (docs/deployment.md).
# ---------------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default=(
        "django.core.mail.backends.filebased.EmailBackend"
        if DEBUG
        else "django.core.mail.backends.smtp.EmailBackend"
    ),
)
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Switchboard <switchboard@localhost>")
# The address of the site as users reach it: links in emails and pushes point here.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Web Push (RFC 8292 VAPID): the private key as PEM or base64url DER / raw, the public key as
# base64url of the uncompressed point (what PushManager.subscribe takes), and a contact
# ("mailto:..." or an https URL) push services may write to. Without a private key, push is
# off unless DEBUG is on, which keeps a generated pair in VAPID_DEV_KEY_FILE.
VAPID_PRIVATE_KEY = env.str("VAPID_PRIVATE_KEY", default="")
VAPID_PUBLIC_KEY = env.str("VAPID_PUBLIC_KEY", default="")
VAPID_SUBJECT = env.str("VAPID_SUBJECT", default="mailto:switchboard@localhost")
VAPID_DEV_KEY_FILE = VAR_DIR / "vapid-private.pem"
# Push endpoints are URLs the worker POSTs to: only https to a named host, unless this is on
# (DEBUG's default: a local push service in development and tests).
PUSH_ALLOW_LOCAL_ENDPOINTS = env.bool("PUSH_ALLOW_LOCAL_ENDPOINTS", default=DEBUG)

# ---------------------------------------------------------------------------
# Operations (docs/subsystems/operations.md): readiness probes and metrics.
# ---------------------------------------------------------------------------
OPS = {
    # /readyz: a Celery worker must answer a ping within this; beat must have ticked within
    # BEAT_MAX_AGE (it ticks at least every 5 s); the channel layer must echo a message.
    "READY_WORKER_TIMEOUT_SECONDS": env.float("OPS_READY_WORKER_TIMEOUT_SECONDS", default=1.0),
    "READY_BEAT_MAX_AGE_SECONDS": env.int("OPS_READY_BEAT_MAX_AGE_SECONDS", default=60),
    "READY_LAYER_TIMEOUT_SECONDS": 2.0,
    # GET /metrics: with a token, scrapers send "Authorization: Bearer <token>"; without,
    # only a client on loopback talking straight to a loopback-bound socket (no proxy) may
    # scrape, so any server reachable from elsewhere needs the token (ops/views.py).
    "METRICS_TOKEN": env.str("METRICS_TOKEN", default=""),
}
# prometheus-client multiprocess mode: every process of a host writes here (ops/metrics.py).
# prometheus_client reads the variable at import, so settings export it.
PROMETHEUS_MULTIPROC_DIR = env.str(
    "PROMETHEUS_MULTIPROC_DIR",
    default=str(Path(tempfile.gettempdir()) / "switchboard-metrics" / REDIS_KEY_PREFIX),
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR

# ---------------------------------------------------------------------------
# Security: secure by default whenever DEBUG is off. HTTPS redirect and HSTS are left to
# the TLS-terminating proxy (docs/deployment.md), so they are opt-in here.
# ---------------------------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
# The pages' Content-Security-Policy (web/middleware.py adds this host's ws(s):// origin to
# connect-src). Only what the pages use: their own scripts and styles, the data: favicon,
# camera streams (srcObject, not a URL) need no media-src.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# Third-party pages with inline scripts: no policy (web/middleware.py). Their files are
# served from here (drf-spectacular-sidecar, Django's admin), not from a CDN.
CSP_EXEMPT_PATHS = ["/api/docs/", "/api/redoc/", "/admin/"]
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
)

# ---------------------------------------------------------------------------
# Logging: one line per record, key=value, to stderr.
# ---------------------------------------------------------------------------
LOG_LEVEL_TASKS = env.str("LOG_LEVEL_TASKS", default="WARNING")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "kv": {
            # Adds task=<name> task_id=<id> to records logged inside a Celery task.
            "()": "ops.logging.KeyValueFormatter",
            "format": "ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s",
        }
    },
    "filters": {
        # No ticket in a log line (ops.logging.RedactSecrets).
        "redact_secrets": {"()": "ops.logging.RedactSecrets"},
        "quiet_probe_failures": {"()": "ops.logging.QuietProbeFailures"},
        "cache_outage": {
            "()": "core.logfilter.RateLimitFilter",
            "seconds": CACHE_ERROR_LOG_SECONDS,
        },
        # PostgreSQL or a Redis away: every request, connect and push fails alike
        # (core/api.py, core/events.py, conversations/writer.py, realtime/auth.py,
        # realtime/consumer.py); one line per kind and interval.
        "outage": {
            "()": "core.logfilter.RateLimitFilter",
            "seconds": OUTAGE_LOG_SECONDS,
            "level": "ERROR",
        },
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "kv",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["stderr"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # uvicorn logs every accepted WebSocket's URL, query string included ('"WebSocket
        # /ws?ticket=..." [accepted]'), on uvicorn.error, through the handler of its own it
        # configured before Django's: a filter on the logger sees each record first. (Not
        # uvicorn.access: naming it here would replace its handler and undo
        # --no-access-log; it logs HTTP request lines, and a ticket only travels in the
        # WebSocket URL.)
        "uvicorn.error": {"filters": ["redact_secrets"]},
        # /readyz's 503 is an answer, not an error (ops.logging.QuietProbeFailures).
        "django.request": {"filters": ["quiet_probe_failures"]},
        # Periodic-task chatter: beat's "Scheduler: Sending due task", the worker's "Task ...
        # received" / "succeeded", a period already run. A few tasks every 2-5 s buried
        # everything else; warnings and failures still show (LOG_LEVEL_TASKS=INFO: all).
        **{
            name: {"level": LOG_LEVEL_TASKS}
            for name in (
                "celery.beat",
                "celery.worker.strategy",
                "celery.app.trace",
                "core.periodic",
            )
        },
        # A cache outage fails every cache call: one line per interval, not one per call.
        "core.cache": {"filters": ["cache_outage"]},
        "core.cache.outage": {"filters": ["cache_outage"]},
        "core.api.outage": {"filters": ["outage"]},
        "realtime.outage": {"filters": ["outage"]},
        "core.events.outage": {"filters": ["outage"]},
        "conversations.writer.outage": {"filters": ["outage"]},
        # channels_redis' subscriber logs its reconnect attempts with a traceback, about
        # once a second per process while the bus is away.
        "channels_redis.pubsub": {"filters": ["outage"]},
    },
}
