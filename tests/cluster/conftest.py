"""The cluster tests (issue 16): real Redis topologies on loopback, with real server, worker
and beat processes on them. Every test here is marked ``cluster`` (``pytest -m cluster``)
and runs in ``make test``."""

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)
