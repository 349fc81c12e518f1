"""The cluster tests (issue 16): real Redis topologies on loopback, with real server, worker
and beat processes on them. Every test here is marked ``cluster`` (``pytest -m cluster``)
and runs in ``make test``."""

from pathlib import Path

import pytest

from switchboard.servers import ServerProcess
from tests.conftest import ARTIFACTS, SERVER_ARGS

HERE = Path(__file__).parent
# Several processes start at once here, on a machine that may be busy: more than the
# suite's 30 s for one.
START_TIMEOUT_SECONDS = 60


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture
def web(server_env):
    """``web(n, **env)``: ``n`` server processes started side by side (the suite's
    ``servers`` starts them one after the other); all stopped at the end."""
    started: list[ServerProcess] = []

    def start(n: int, **extra_env: str) -> list[ServerProcess]:
        procs = [
            ServerProcess(
                env={**server_env, **extra_env},
                log_dir=ARTIFACTS,
                args=SERVER_ARGS,
                start_timeout=START_TIMEOUT_SECONDS,
            )
            for _ in range(n)
        ]
        for proc in procs:
            started.append(proc)
            proc.spawn()
        for proc in procs:
            proc.wait_ready()
        return procs

    yield start
    for proc in started:
        proc.terminate()
    for proc in started:
        proc.stop()
