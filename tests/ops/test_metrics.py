"""GET /metrics: one exposition for every server process of the host (multiprocess mode)."""

import asyncio
import json

import httpx
import pytest
import websockets
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import token_for

pytestmark = pytest.mark.django_db(transaction=True)


def _scrape(url: str) -> dict[tuple, float]:
    res = httpx.get(url + "/metrics", timeout=10)
    assert res.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(res.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.slow
def test_metrics_add_up_every_server_process(servers, make_user):
    a, b = servers(2)
    token = token_for(make_user())
    before = _scrape(a.url)

    async def scenario():
        headers = {"Authorization": f"Token {token}"}
        sockets = [
            await websockets.connect(url, additional_headers=headers)
            for url in (a.ws_url, b.ws_url, b.ws_url)
        ]
        for ws in sockets:
            assert json.loads(await ws.recv())["type"] == "hello"
        await sockets[2].send(json.dumps({"type": "ping", "ref": "p"}))
        assert json.loads(await sockets[2].recv())["type"] == "reply"
        for _ in range(3):
            res = await asyncio.to_thread(httpx.get, b.url + "/healthz")
            assert res.status_code == 200
        during = await asyncio.to_thread(_scrape, a.url)  # a sees b's numbers too
        b.kill()  # SIGKILL: b never runs a hook; its gauges must not haunt the sum
        after_kill = await asyncio.to_thread(_scrape, a.url)
        for ws in sockets[:1]:
            await ws.close()
        return during, after_kill

    during, after_kill = asyncio.run(scenario())
    gauge = "switchboard_ws_connections"
    assert _value(during, gauge) - _value(before, gauge) == 3
    assert _value(after_kill, gauge) - _value(before, gauge) == 1
    http = "switchboard_http_requests_total"
    assert _value(during, http, method="GET", status="200") >= (
        _value(before, http, method="GET", status="200") + 3
    )
    frames_in = "switchboard_ws_frames_in_total"
    assert _value(during, frames_in, type="ping") >= _value(before, frames_in, type="ping") + 1
    assert _value(during, "switchboard_ws_frames_out_total", type="hello") >= 3


def test_metrics_need_the_token_when_one_is_set(settings):
    assert Client().get("/metrics").status_code == 200  # loopback, no token configured
    settings.OPS = {**settings.OPS, "METRICS_TOKEN": "s3cret"}
    assert Client().get("/metrics").status_code == 403
    res = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert res.status_code == 200
    assert b"switchboard_http_requests_total" in res.content


def test_metrics_refuse_public_addresses_without_a_token():
    assert Client(REMOTE_ADDR="8.8.8.8").get("/metrics").status_code == 403
