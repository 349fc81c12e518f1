"""The cluster tests (issue 16): real Redis topologies on loopback, with real server, worker
and beat processes on them. Every test here is marked ``cluster`` (``pytest -m cluster``)
and runs in ``make test``."""

import pytest


def pytest_collection_modifyitems(config, items):
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.cluster)
