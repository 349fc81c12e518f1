# The two commands of README.md: `make run` and `make test`. Everything they need is
# installed from pyproject.toml + uv.lock into .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run superuser test chromium cluster-tools lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(UV) sync --frozen --quiet
	touch $@

run: install
	$(PY) -m switchboard.launcher

# A staff account for /admin/ on `make run`'s defaults (DEBUG on, its SQLite file, a Redis
# of its own while the command runs; migrates first); asks for the name and password. Unattended:
# DJANGO_SUPERUSER_USERNAME / _EMAIL / _PASSWORD set and ARGS=--noinput.
superuser: install
	$(PY) -m switchboard.launcher superuser $(ARGS)

# pytest runs on pytest-xdist workers: one per core, at most 4 (each worker starts its own
# servers, Celery processes and Chromium, and PostgreSQL allows 100 connections in all). A test
# module stays on one worker (--dist loadfile), so its module-scoped processes start once.
# PYTEST_WORKERS=0 runs everything in one process; PYTEST_ARGS adds pytest arguments.
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n > 4 ? 4 : n )))

test: install chromium cluster-tools
	$(PY) -m tests.preflight
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The browser of the end-to-end tests (tests/web): Debian's chromium, driven by Playwright
# (Playwright's own browser download is not used).
chromium:
	@command -v chromium >/dev/null || (DEBIAN_FRONTEND=noninteractive apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# The engines of the multi-machine topology that the cluster tests start on loopback ports
# (tests/cluster): nginx, PgBouncer and Redis Sentinel, from Debian. Their services are not
# started: each test runs its own processes.
cluster-tools:
	@command -v nginx >/dev/null && command -v pgbouncer >/dev/null && \
		command -v redis-sentinel >/dev/null || (DEBIAN_FRONTEND=noninteractive apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
		pgbouncer redis-sentinel)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) -m bench $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) var bench-results test-artifacts
