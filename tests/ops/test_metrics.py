"""GET /metrics: one exposition for every server process of the host (multiprocess mode)."""

import asyncio
from contextlib import contextmanager

import httpx
import pytest
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from switchboard.servers import ServerProcess
from switchboard_client import Connection
from tests.conftest import ARTIFACTS, ROOT, SERVER_ARGS, SERVER_START_TIMEOUT_SECONDS, token_for

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
        sockets = [
            await Connection.open(url, token=token) for url in (a.ws_url, b.ws_url, b.ws_url)
        ]
        for ws in sockets:
            assert ws.hello_frame["type"] == "hello"
        await sockets[2].send({"type": "ping", "ref": "p"})
        assert (await sockets[2].recv())["type"] == "reply"
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


# Django's test client names the server "testserver"; under ASGI SERVER_NAME is the local
# address the connection was accepted on (scope["server"]).
ON_LOOPBACK = {"SERVER_NAME": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1"}


def test_metrics_need_the_token_when_one_is_set(settings):
    assert Client(**ON_LOOPBACK).get("/metrics").status_code == 200  # no token configured
    settings.OPS = {**settings.OPS, "METRICS_TOKEN": "s3cret"}
    assert Client(**ON_LOOPBACK).get("/metrics").status_code == 403
    assert (
        Client(**ON_LOOPBACK).get("/metrics", HTTP_AUTHORIZATION="Bearer s3crex").status_code == 403
    )
    res = Client(REMOTE_ADDR="8.8.8.8").get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert res.status_code == 200
    assert b"switchboard_http_requests_total" in res.content


@pytest.mark.parametrize(
    "meta",
    [
        {"SERVER_NAME": "127.0.0.1", "REMOTE_ADDR": "8.8.8.8"},  # a public client
        {"SERVER_NAME": "127.0.0.1", "REMOTE_ADDR": "172.18.0.1"},  # Docker's NAT gateway
        {"SERVER_NAME": "172.18.0.5", "REMOTE_ADDR": "127.0.0.1"},  # listening beyond loopback
        {"SERVER_NAME": "testserver", "REMOTE_ADDR": "127.0.0.1"},  # not an address
        {**ON_LOOPBACK, "HTTP_X_FORWARDED_FOR": "127.0.0.1"},  # relayed by a proxy
        {**ON_LOOPBACK, "HTTP_FORWARDED": "for=127.0.0.1"},
        {**ON_LOOPBACK, "HTTP_X_REAL_IP": "127.0.0.1"},
    ],
)
def test_metrics_without_a_token_answer_only_a_direct_loopback_scrape(meta):
    assert Client(HTTP_HOST="localhost", **meta).get("/metrics").status_code == 403


def test_the_shipped_compose_trusts_only_nginx_and_requires_the_token():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    web = compose["services"]["web"]["command"].split()
    trusted = web[web.index("--forwarded-allow-ips") + 1]
    nginx = compose["services"]["nginx"]["networks"]["backend"]["ipv4_address"]
    assert trusted == nginx
    assert "--proxy-headers" in web
    assert compose["x-app"]["environment"]["METRICS_TOKEN"].startswith("${METRICS_TOKEN:?")


def _get(server: ServerProcess, source: str, headers: dict) -> int:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.get(server.url + "/metrics", headers=headers).status_code


PROXY = "127.0.0.2"  # plays nginx; 127.0.0.1 plays a stranger


@contextmanager
def _behind_proxy(env: dict):
    """A server with the compose file's uvicorn options, trusting only PROXY; then stopped."""
    server = ServerProcess(
        env=env,
        log_dir=ARTIFACTS,
        args=[*SERVER_ARGS, "--proxy-headers", "--forwarded-allow-ips", PROXY],
        start_timeout=SERVER_START_TIMEOUT_SECONDS,
    )
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.mark.slow
def test_a_spoofed_forwarded_for_does_not_open_metrics_behind_the_compose_proxy_options(
    server_env,
):
    spoofed = {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}
    with _behind_proxy(server_env) as server:
        # A scraper on this host, straight to the server: the one tokenless case.
        assert _get(server, "127.0.0.1", {}) == 200
        # A client that claims loopback itself (the request) ...
        assert _get(server, "127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}) == 403
        # ... and through the proxy, which appends the real address to what it was sent.
        assert _get(server, PROXY, spoofed) == 403
    with _behind_proxy({**server_env, "METRICS_TOKEN": "s3cret"}) as server:
        assert _get(server, "127.0.0.1", {}) == 403
        assert _get(server, PROXY, {**spoofed, "Authorization": "Bearer s3cret"}) == 200
