from tests.celery_processes import celery_procs  # noqa: F401  (fixture)
