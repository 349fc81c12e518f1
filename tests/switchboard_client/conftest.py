"""One real server process for a whole module of client tests (restarted by the tests that
kill or freeze it: the same port, so the clients come back to it).

Its replay bounds are small (``RESUME_MAX_MESSAGES``, ``RESUME_MAX_CHANGES``), so that
``sync.too_far`` and ``sync.changes_too_far`` take a dozen messages, not 500."""

import pytest

from switchboard.servers import ServerProcess
from tests.conftest import ARTIFACTS, SERVER_ARGS, SERVER_START_TIMEOUT_SECONDS, process_env

RESUME_MAX_MESSAGES = 10
RESUME_MAX_CHANGES = 3


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        env = process_env(
            DB_POOL_MAX_SIZE="2",
            LIMIT_RESUME_MAX_MESSAGES=str(RESUME_MAX_MESSAGES),
            LIMIT_RESUME_MAX_CHANGES=str(RESUME_MAX_CHANGES),
        )
    proc = ServerProcess(
        env=env, log_dir=ARTIFACTS, args=SERVER_ARGS, start_timeout=SERVER_START_TIMEOUT_SECONDS
    )
    proc.start()
    yield proc
    proc.stop()
