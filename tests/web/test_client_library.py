"""static/js/switchboard.js in real Chromium against a scripted fake server (no network).

The end-to-end tests show the library working with the real server; these pin down the
parts a real server rarely provokes on cue: a silent connection, a reply lost with its
connection, a reload with unsent messages, a 4401, the back-off's bounds.
"""

from pathlib import Path

import pytest

from tests.conftest import ROOT

ORIGIN = "http://client.test"
FILES = {
    "/static/js/switchboard.js": ROOT / "static" / "js" / "switchboard.js",
    "/harness/fake_ws.js": Path(__file__).parent / "harness" / "fake_ws.js",
}
PAGE = (
    '<!doctype html><title>harness</title><script type="module" src="/harness/fake_ws.js"></script>'
)


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(20_000)

    # Everything is served from here: the page never touches the network.
    def serve(route):
        path = "/" + route.request.url.removeprefix(ORIGIN).lstrip("/").split("?")[0]
        if path in FILES:
            route.fulfill(body=FILES[path].read_text(), content_type="text/javascript")
        else:
            route.fulfill(body=PAGE, content_type="text/html")

    context.route(f"{ORIGIN}/**", serve)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{ORIGIN}/")
    page.wait_for_function("window.harnessReady === true")
    yield page
    context.close()
    assert not errors


def run(page, body: str, options: str = "") -> dict:
    """Run ``body`` (async JS) with ``s`` = a Socket on the fake server, ``states`` its states."""
    setup = (
        "const states = []; const s = new lib.Socket({url: 'ws://fake/ws',"
        " WebSocket: FakeWebSocket, backoffBaseMs: 20, backoffMaxMs: 100,"
        f" requestTimeoutMs: 500, storage: null, {options}}});"
        " s.onState((st) => states.push(st));"
    )
    return page.evaluate(f"async () => {{ {setup} {body} }}")


def test_backoff_is_full_jitter_within_the_exponential_cap(page):
    result = page.evaluate(
        """() => {
        const out = [];
        for (let attempt = 0; attempt < 12; attempt++) {
          const cap = Math.min(30000, 500 * 2 ** attempt);
          const xs = Array.from({length: 400}, () => lib.backoffDelay(attempt, 500, 30000));
          out.push({cap, min: Math.min(...xs), max: Math.max(...xs)});
        }
        return out;
      }"""
    )
    for row in result:
        assert 0 <= row["min"] < row["cap"] * 0.1  # full jitter: starts near zero
        assert row["cap"] * 0.8 < row["max"] < row["cap"]  # and spreads up to the cap
    assert result[-1]["cap"] == 30000


def test_heartbeat_without_reply_forces_a_reconnect(page):
    result = run(
        page,
        """
          s.connect();
          await until(() => s.state === "open");
          fake.noPong = true;  // the connection goes quiet without closing
          await until(() => fake.sockets.length === 2 && s.state === "open");
          fake.noPong = false;
          return {states, closed: fake.sockets[0].closedBy, pings: fake.sent("ping").length};
        """,
        "heartbeatIntervalMs: 100, heartbeatTimeoutMs: 150",
    )
    assert result["states"][:4] == ["connecting", "open", "reconnecting", "open"]
    assert result["closed"]["code"] == 4000  # closed by the client: heartbeat timeout
    assert result["pings"] >= 1


def test_a_socket_that_hears_frames_sends_no_ping_and_one_that_goes_quiet_does(page):
    result = run(
        page,
        """
          s.connect();
          await until(() => s.state === "open");
          const before = fake.sent("ping").length;
          // The server talks every 40 ms (events), well inside the 150 ms interval.
          const ws = fake.last();
          for (let i = 0; i < 15; i++) {
            ws.push({type: "presence", data: {user_id: 1, online: true, last_seen: ""}});
            await sleep(40);
          }
          const whileBusy = fake.sent("ping").length - before;
          await until(() => fake.sent("ping").length > before);  // quiet: the ping goes out
          return {whileBusy, state: s.state, sockets: fake.sockets.length};
        """,
        "heartbeatIntervalMs: 150, heartbeatTimeoutMs: 150",
    )
    assert result["whileBusy"] == 0
    assert (result["state"], result["sockets"]) == ("open", 1)


def test_requests_resolve_reject_and_time_out(page):
    result = run(
        page,
        """
          const early = s.request("ping");  // made before the socket is open: waits for it
          s.connect();
          const pong = await early;
          const errors = [];
          for (const type of ["fail", "never.answered"]) {
            try { await s.request(type, {}, {timeout: 200}); }
            catch (e) { errors.push([e.name, e.code]); }
          }
          s.disconnect();
          let offline = null;
          try { await s.request("ping", {}, {queue: false}); } catch (e) { offline = e.code; }
          return {pong: typeof pong.ts, errors, offline, state: s.state};
        """,
    )
    assert result["pong"] == "number"
    assert result["errors"] == [["RequestError", "forbidden"], ["RequestError", "timeout"]]
    assert result["offline"] == "offline"
    assert result["state"] == "closed"


def test_resume_sends_cursors_and_nothing_is_delivered_twice(page):
    result = run(
        page,
        """
          const got = [];
          s.on("message.new", (m) => got.push(m.seq));
          s.setCursor(5, 10);
          s.connect();
          await until(() => s.state === "open");
          const ws = fake.last();
          const msg = (seq) => ({type: "message.new",
            data: {conversation_id: 5, seq, sender_id: 1, client_id: "x" + seq}});
          ws.push(msg(10));  // already held: dropped
          ws.push(msg(11));
          ws.push(msg(11));  // a duplicate push: dropped
          ws.drop(1006);
          await until(() => fake.sockets.length === 2 && s.state === "open");
          fake.last().push(msg(11));  // replayed again after the reconnect: dropped
          fake.last().push(msg(12));
          await sleep(20);
          return {got, syncs: fake.sent("sync").map((f) => f.data.conversations)};
        """,
    )
    assert result["got"] == [11, 12]
    assert result["syncs"] == [{"5": 10}, {"5": 11}]


def test_outbox_survives_a_reload_and_a_lost_reply_and_sends_one_client_id(page):
    result = page.evaluate(
        """async () => {
          localStorage.clear();
          const opts = {url: "ws://fake/ws", WebSocket: FakeWebSocket, backoffBaseMs: 20,
                        backoffMaxMs: 50, requestTimeoutMs: 500, outboxKey: "outbox.7"};
          // Written while offline: kept in localStorage.
          const first = new lib.Socket(opts);
          const {clientId} = first.send(3, "written offline");
          const persisted = JSON.parse(localStorage.getItem("outbox.7"));
          // The page reloads: the new socket finds the message and sends it on connect...
          const second = new lib.Socket(opts);
          const pendingAfterReload = second.pendingMessages(3).map((m) => m.client_id);
          fake.dropOnSend = 1;  // ...but the connection dies before the reply comes
          second.connect();
          await until(() => fake.sent("message.send").length === 2
                            && second.pendingMessages().length === 0);
          return {
            clientId, persisted: persisted.map((m) => m.client_id), pendingAfterReload,
            sends: fake.sent("message.send").map((f) => f.data.client_id),
            stored: fake.stored.size, storage: localStorage.getItem("outbox.7"),
          };
        }"""
    )
    cid = result["clientId"]
    assert result["persisted"] == [cid]
    assert result["pendingAfterReload"] == [cid]
    assert result["sends"] == [cid, cid]  # re-sent with the same client_id...
    assert result["stored"] == 1  # ...so stored once
    assert result["storage"] is None  # and the outbox is empty again


def test_unauthorized_close_is_a_state_not_a_silent_stop(page):
    result = run(
        page,
        """
          fake.closeOnOpen = 4401;
          const waiting = s.request("ping", {}, {timeout: 2000}).catch((e) => e.code);
          s.connect();
          await until(() => s.state === "unauthorized");
          await sleep(300);  // no retry loop hammering the server meanwhile
          const attempts = fake.sockets.length;
          fake.closeOnOpen = null;
          s.connect();  // e.g. after signing in again
          await until(() => s.state === "open");
          return {states, attempts, waiting: await waiting, last: s.lastClose.code};
        """,
    )
    assert result["attempts"] == 1
    assert result["states"] == ["connecting", "unauthorized", "connecting", "open"]
    assert result["waiting"] == "unauthorized"


def test_a_suspended_account_stops_the_retries_with_a_state_of_its_own(page):
    result = run(
        page,
        """
          fake.closeOnOpen = 4451;
          const waiting = s.request("ping", {}, {timeout: 2000}).catch((e) => e.code);
          s.connect();
          await until(() => s.state === "suspended");
          await sleep(300);  // every retry would be refused until the suspension ends
          return {states, attempts: fake.sockets.length, waiting: await waiting,
                  last: s.lastClose.code};
        """,
    )
    assert result["attempts"] == 1
    assert result["states"] == ["connecting", "suspended"]
    assert (result["waiting"], result["last"]) == ("suspended", 4451)
