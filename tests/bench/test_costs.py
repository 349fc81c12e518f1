"""bench/costs.py counts what a window did: known Redis commands and PostgreSQL writes, made
here against a redis-server of the test's own and the test database, come out exactly."""

import uuid

import psutil
import psycopg
import pytest
import redis
from django.db import connection

from bench import costs
from switchboard.embedded_redis import RedisServer


@pytest.fixture(scope="module")
def private_redis():
    server = RedisServer().start()
    yield server
    server.stop()


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgresql://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_cost_meter_counts_the_windows_commands_and_writes(private_redis):
    table = f"costprobe_{uuid.uuid4().hex[:8]}"
    url = _database_url()
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    client = redis.Redis(port=private_redis.port)
    client.ping()  # the connection's own hello is not the window's
    try:
        # Our writes come from a connection closed before the meter reads (its counters are
        # published as it exits): no need to wait out an idle backend's 10 s.
        meter = costs.CostMeter(
            [psutil.Process()], redis_url=private_redis.url(), database_url=url,
            pg_flush_seconds=1.0,
        ).start()  # fmt: skip
        for i in range(25):
            client.set(f"k{i}", i)
        with psycopg.connect(url) as pg:  # one transaction
            pg.execute(f"INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 40) g")
            pg.execute(f"UPDATE {table} SET v = 1 WHERE id <= 10")
        sum(i * i for i in range(200_000))  # some CPU in the measured process
        window = meter.stop()
    finally:
        client.close()
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(f"DROP TABLE {table}")

    bus = window["redis"]
    assert bus["by_command"]["set"] == 25
    assert "info" not in bus["by_command"]  # the meter's own
    assert bus["commands"] == sum(bus["by_command"].values())
    assert bus["usec"] > 0
    pg_delta = window["postgres"]
    assert pg_delta["tables"][table] == {"inserted": 40, "updated": 10, "deleted": 0}
    assert pg_delta["rows_inserted"] >= 40
    assert pg_delta["rows_updated"] >= 10
    assert pg_delta["commits"] >= 1
    assert pg_delta["wal_bytes_server"] > 0
    assert window["web_cpu_seconds"] > 0

    unit = costs.per(window, 5)
    assert unit["redis_by_command"]["set"] == 5
    assert unit["pg_rows_inserted"] == pytest.approx(pg_delta["rows_inserted"] / 5, abs=1e-3)
    assert unit["web_cpu_ms"] == pytest.approx(window["web_cpu_seconds"] * 1000 / 5, abs=1e-3)
    summary = costs.summary(window, messages=5, user_seconds=10)
    assert summary["per_message"]["redis_by_command"]["set"] == 5
    assert summary["per_user_second"]["redis_by_command"]["set"] == 2.5


def test_lsn_bytes():
    assert costs.lsn_bytes("0/10") == 16
    assert costs.lsn_bytes("1/0") == 2**32
