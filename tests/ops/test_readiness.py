"""/readyz follows the Celery worker: ready with one, not ready once it is gone."""

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_readyz_fails_when_the_worker_is_gone(celery_procs):
    worker = celery_procs.worker()
    celery_procs.beat()
    res = Client().get("/readyz")
    assert res.status_code == 200, res.json()
    worker.kill()  # SIGKILL, children too: no goodbye to the broker
    res = Client().get("/readyz")
    assert res.status_code == 503
    assert res.json()["failed"] == ["celery_worker"]
    assert "no Celery worker" in res.json()["checks"]["celery_worker"]["error"]
