import pytest

from tests.celery_processes import Celery, celery_procs, process_env  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def worker_and_beat(django_db_setup, django_db_blocker):
    """A real worker and beat for a whole test module (readiness needs both)."""
    procs = Celery(process_env())
    procs.worker()
    procs.beat()
    yield procs
    procs.stop_all()
