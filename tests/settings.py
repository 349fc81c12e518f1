"""Test settings: the real settings, pointed at real PostgreSQL and Redis by default.

Only environment defaults are set here; ``switchboard.settings`` stays the one place that
reads them. Tests use their own Redis database numbers and key prefix and delete only
their own keys.
"""

import os
import tempfile
import uuid

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("CACHE_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("DEBUG", "true")
# Every test client is 127.0.0.1: the shipped rates would throttle the suite, so throttles
# are off ("") and the lock-out far away. The tests of throttles and lock-out set small
# values themselves (tests/accounts/test_throttles.py); server processes inherit these
# through the environment unless a test passes its own.
os.environ.setdefault("THROTTLE_LOGIN", "")
os.environ.setdefault("THROTTLE_SIGNUP", "")
os.environ.setdefault("THROTTLE_WS_TICKET", "")
os.environ.setdefault("THROTTLE_PROFILE_READ", "")
os.environ.setdefault("AXES_FAILURE_LIMIT", "1000")
# One prefix per test run: parallel runs on one server cannot see each other's keys.
_run_prefix = _base_prefix = os.environ.get("SB_TEST_PREFIX") or f"sbtest{uuid.uuid4().hex[:8]}"
# Under pytest-xdist the controller loads these settings first and every worker inherits its
# prefix through the environment: each worker adds its name (gw0, gw1 ...), once, so that the
# workers share no key, database or metrics directory. A worker's server, Celery and launcher
# processes inherit both variables and keep the worker's prefix as it is.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker:
    _base_prefix = _run_prefix.removesuffix(f"_{_worker}")
    _run_prefix = f"{_base_prefix}_{_worker}"
os.environ["REDIS_KEY_PREFIX"] = _run_prefix
os.environ["SB_TEST_PREFIX"] = _run_prefix
# prometheus-client's multiprocess files: one directory per prefix (the base settings derive
# it from the prefix only when the variable is unset, and a controller's would be inherited).
os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(
    tempfile.gettempdir(), "switchboard-metrics", _run_prefix
)

from switchboard.settings import *  # noqa: E402, F403  (after the environment it reads)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
# A database of this run's own, so two runs on one server never drop each other's. (Under
# xdist pytest-django appends the worker's name to it: test_<prefix>_gw0 ...)
DATABASES["default"]["TEST"] = {"NAME": f"test_{_base_prefix}"}  # noqa: F405
# Worker threads keep no connection open (the test database must be droppable): the base
# settings' pool gives every connection back after each call, as in production.
assert DATABASES["default"]["CONN_MAX_AGE"] == 0  # noqa: F405
