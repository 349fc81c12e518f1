"""nginx in front of two web processes (issue 16, item 3; docs/deployment.md, "nginx and
draining"), with the shipped ``deploy/nginx.conf`` (tests/cluster/edge_processes.py says what
is substituted): a client through nginx on either process converses with one on the other;
X-Forwarded-For and X-Forwarded-Proto are believed from nginx only; one process drained
(SIGTERM: close 1012) and later one killed (SIGKILL): their clients reconnect through nginx to
the other, resume with their cursor, and no message is lost or duplicated.
"""

import asyncio
import os
import socket
import time

import httpx
import psycopg
import pytest
from django.db import connection

from ops.connections import connections_by_process
from switchboard.servers import ServerProcess
from switchboard_client import ConnectError, Connection, ConnectionClosed
from tests.cluster.edge_processes import NGINX_UPSTREAM_SOURCE, nginx, web_processes
from tests.conftest import SERVER_ARGS, NetClient
from tests.message_stream import MessageStream, assert_stored_once

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PASSWORD = "correct-horse-battery-9"
# As deploy/docker-compose.yml's web command: forwarded headers believed from nginx only, and a
# bounded wait for the last requests when draining.
WEB_ARGS = [
    *SERVER_ARGS, "--proxy-headers", "--forwarded-allow-ips", NGINX_UPSTREAM_SOURCE,
    "--timeout-graceful-shutdown", "10",
]  # fmt: skip
LOGIN_RATE = 3  # per address and minute, for the X-Forwarded-For check
STREAMS = 2
PER_PHASE = 20  # messages each stream sends between two faults
EXIT_TIMEOUT_SECONDS = 20
# Sockets moving to the other process: nginx's passive check keeps a process that refused a
# connection (a draining or restarting one) out for fail_timeout (10 s, deploy/nginx.conf);
# with both out at once ("no live upstreams") a client waits that long, then reconnects.
SOCKETS_TIMEOUT_SECONDS = 30


@pytest.fixture
def web_pair(server_env):
    env = {**server_env, "THROTTLE_LOGIN": f"{LOGIN_RATE}/min", "DB_POOL_MAX_SIZE": "2"}
    with web_processes(env, WEB_ARGS) as procs:
        yield procs


def _pair(url: str, tag: str) -> tuple[str, str, int]:
    """Two new users and their accepted direct conversation, made through ``url``."""
    with httpx.Client(base_url=url, timeout=20) as http:
        tokens, ids = [], []
        for name in ("ann", "bob"):
            res = http.post(
                "/api/auth/signup", json={"username": f"{name}{tag}", "password": PASSWORD}
            )
            assert res.status_code == 201, res.text
            tokens.append(res.json()["token"])
            ids.append(res.json()["user_id"])
        auth = [{"Authorization": f"Token {t}"} for t in tokens]
        res = http.post("/api/conversations", json={"kind": "direct", "user_id": ids[1]},
                        headers=auth[0])  # fmt: skip
        assert res.status_code == 201, res.text
        cid = res.json()["id"]
        assert http.post(f"/api/conversations/{cid}/accept", headers=auth[1]).status_code == 200
    return tokens[0], tokens[1], cid


def _sockets(*procs: ServerProcess) -> list[int]:
    """Open WebSockets of each process, from its entry in the bus (ops/connections.py)."""
    by_pid = {int(name.rsplit(":", 1)[1]): n for name, n in connections_by_process().items()}
    return [by_pid.get(proc.pid, 0) for proc in procs]


async def _wait_sockets(
    proc: ServerProcess, count: int, streams: list[MessageStream], proxy
) -> None:
    """Return once ``proc`` holds ``count`` sockets (its entry is written as each opens)."""
    deadline = time.monotonic() + SOCKETS_TIMEOUT_SECONDS
    while (held := (await asyncio.to_thread(_sockets, proc))[0]) != count:
        for stream in streams:
            stream._failed_raise()  # a client that gave up says why
        summaries = [s._summary() for s in streams]
        assert time.monotonic() < deadline, (
            f"{proc.label} holds {held}: {summaries} {proxy.error_log()[-4000:]}"
        )
        await asyncio.sleep(0.1)


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
    except ConnectionRefusedError:
        return True
    return False


def _login_status(url: str, source: str, forwarded_for: str | None) -> int:
    """A failed log-in from local address ``source``; its status (429 once throttled)."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as http:
        body = {"username": "nobody-here", "password": "wrong"}
        return http.post(url + "/api/auth/token", json=body, headers=headers).status_code


def _forwarded_for_is_believed_from_nginx_only(proxy, a) -> None:
    # Through nginx from 127.0.0.3, naming a new address each time: counted as 127.0.0.3.
    statuses = [
        _login_status(proxy.url, "127.0.0.3", f"198.51.100.{i}") for i in range(LOGIN_RATE + 1)
    ]
    assert statuses == [401] * LOGIN_RATE + [429], statuses
    # Straight to a web process, claiming to be 127.0.0.3: not believed (a bucket of its own).
    assert _login_status(a.url, "127.0.0.1", "127.0.0.3") == 401
    # Another client through nginx is not nginx's own address either: counted apart.
    assert _login_status(proxy.url, "127.0.0.4", None) == 401
    # Prometheus scrapes the processes directly: nothing of it through nginx.
    assert httpx.get(proxy.url + "/metrics", timeout=10).status_code == 404


async def _close_code(url: str, origin: str, headers: dict[str, str] | None = None) -> int | None:
    """Open a socket without credentials from a page at ``origin``; the code it is closed with
    (4401 once the origin passed, 4403 if it did not), before any ``hello``."""
    headers = {"Origin": origin, **(headers or {})}
    try:
        ws = await Connection.open(url, headers=headers, open_timeout=20)
    except ConnectError as exc:
        assert exc.status is None, exc  # the upgrade was accepted, then the socket closed
        return exc.close_code
    await ws.close()
    pytest.fail(f"a socket without credentials got a hello: {ws.hello_frame}")


async def _scheme_is_believed_from_nginx_only(proxy, a) -> None:
    # Through nginx (X-Forwarded-Proto https, Host without the port): an https page may
    # open it, as behind TLS; uvicorn sets the scheme from nginx's header (BEHIND_TLS_PROXY
    # off).
    assert await _close_code(proxy.ws_url, "https://127.0.0.1") == 4401
    # Straight to a web process, a client claiming https is not believed: its https page
    # (the same host and port) is another origin.
    own = f"https://127.0.0.1:{a.port}"
    assert await _close_code(a.ws_url, own, {"X-Forwarded-Proto": "https"}) == 4403
    assert await _close_code(a.ws_url, own.replace("https", "http")) == 4401


async def _converse_across(proxy, a, b, ann: str, bob: str, cid: int) -> None:
    """Two sockets through nginx land on different processes (least_conn) and talk."""
    first = await NetClient.open(proxy.ws_url, ann, sync={})
    second = await NetClient.open(proxy.ws_url, bob, sync={})
    try:
        assert sorted(await asyncio.to_thread(_sockets, a, b)) == [1, 1]
        for me, other, n in [(first, second, 1), (second, first, 2)]:
            data = {"conversation_id": cid, "body": "across", "client_id": f"across-{n}"}
            reply = await me.request("message.send", data, timeout=10)
            assert reply["ok"], reply
            assert reply["data"]["message"]["seq"] == n
            # (A socket may also hear its own earlier message: the other's is the next one.)
            seqs = [(await other.event("message.new", timeout=10))["data"]["seq"]]
            while seqs[-1] < n:
                seqs.append((await other.event("message.new", timeout=10))["data"]["seq"])
            assert seqs[-1] == n and seqs == sorted(set(seqs)), seqs
    finally:
        await first.close()
        await second.close()


async def _next_phase(streams: list[MessageStream]) -> None:
    for stream in streams:
        await stream.wait_acked(len(stream.acked) + PER_PHASE, timeout=60)


async def test_nginx_balances_drains_and_survives_a_killed_web_process(web_pair):
    a, b = web_pair
    with nginx(upstreams=[a.port, b.port]) as proxy:
        await asyncio.to_thread(_forwarded_for_is_believed_from_nginx_only, proxy, a)
        await _scheme_is_believed_from_nginx_only(proxy, a)
        tag = f"_{os.getpid()}"
        pairs = [await asyncio.to_thread(_pair, proxy.url, f"{i}{tag}") for i in range(STREAMS + 1)]
        await _converse_across(proxy, a, b, *pairs[0])

        streams = [
            MessageStream(
                send_url=proxy.ws_url, read_url=proxy.ws_url, sender_token=ann,
                reader_token=bob, conversation_id=cid, give_up_after=180,
            )
            for ann, bob, cid in pairs[1:]
        ]  # fmt: skip
        try:
            for stream in streams:
                await stream.start()
            counts = await asyncio.to_thread(_sockets, a, b)
            assert min(counts) > 0, counts  # both processes hold some of the streams' sockets
            await _next_phase(streams)

            # Drain a: a socket straight to it hears 1012, by then a refuses new connections;
            # its stream sockets reconnect through nginx, to b.
            probe = await NetClient.open(a.ws_url, pairs[0][0], sync={})
            a.terminate()
            with pytest.raises(ConnectionClosed) as closed:  # (1006 if no close frame came)
                await probe.recv(timeout=EXIT_TIMEOUT_SECONDS)
            assert closed.value.code == 1012, closed.value
            assert _refused(a.port)
            await asyncio.to_thread(a.proc.wait, EXIT_TIMEOUT_SECONDS)  # type: ignore[union-attr]
            await _next_phase(streams)
            await _wait_sockets(b, 2 * STREAMS, streams, proxy)

            # a back; b killed without a goodbye: its clients move to a.
            await asyncio.to_thread(a.start)
            await asyncio.to_thread(b.kill)
            await _next_phase(streams)
            await _wait_sockets(a, 2 * STREAMS, streams, proxy)

            for stream in streams:
                await stream.stop_sending()
            for stream in streams:
                await stream.wait_received(len(stream.acked), timeout=30)
        finally:
            for stream in streams:
                await stream.close()
        log = proxy.error_log()

    for stream in streams:
        print(f"nginx stream {stream.conversation_id}: slowest reply {stream.slowest_reply:.3f} s")
        print(stream._summary())
    for stream in streams:
        assert stream.sender_reconnects >= 1 and stream.reader_reconnects >= 1, stream._summary()
        stream.assert_exactly_once()
        assert_stored_once(await asyncio.to_thread(_stored, stream.conversation_id), stream.acked)
    assert "[emerg]" not in log and "[alert]" not in log, log[-3000:]
    assert "Traceback" not in a.log.read_text(errors="replace")


def _stored(cid: int) -> list[tuple[str, int]]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    with psycopg.connect(url) as pg:
        rows = pg.execute(
            "SELECT client_id, seq FROM conversations_message WHERE conversation_id = %s", [cid]
        ).fetchall()
    return [(client_id, seq) for client_id, seq in rows]
