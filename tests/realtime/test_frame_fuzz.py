"""A Hypothesis-driven fuzzer of WebSocket frames against a real server process.

Each example opens a socket and sends a burst of frames drawn from docs/protocol.md's frame
types with random, missing and mistyped ``type``, ``ref`` and ``data`` fields, plus frames that
are not JSON, not objects, nested past the parser, above ``frame_max_bytes``, binary, with
lone surrogates, of unknown types. Then it checks the contract:

- every request with a usable ``ref`` is answered exactly once, with that ``ref``;
- every frame that cannot be attributed (no usable ``ref``, not JSON, too large, binary) gets
  exactly one reply with ``"ref": null``; a typing frame without ``ref`` gets none;
- the socket is still usable afterwards: a ``ping`` and a real ``message.send`` succeed;
- the server's log holds no traceback and no ERROR line.

The frame rate limit is raised for the server so the bursts measure the codec and the
handlers, not the 4429 close (tests/realtime/test_processes.py floods a server for that).
"""

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conversations.services import conversation_direct_get_or_create
from switchboard_client import ConnectionClosed
from tests.conftest import NetClient, accept_all, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# About a minute on a quiet machine (each example is a connection and a burst).
MAX_EXAMPLES = 60
FRAMES_PER_EXAMPLE = 12
REPLY_TIMEOUT_SECONDS = 15
FRAME_MAX_BYTES = 16 * 1024  # LIMITS["WS_FRAME_MAX_BYTES"], docs/protocol.md section 5
REF_MAX_CHARS = 64
REF_OPTIONAL = {"typing.start", "typing.stop"}
FRAME_TYPES = [
    "ping", "sync", "message.send", "message.edit", "message.delete", "presence.query",
    "typing.start", "typing.stop", "read", "read.markers", "unread.get", "live.subscribe",
    "live.unsubscribe", "match.enter", "match.cancel", "match.skip", "match.say",
    "match.signal", "match.block", "match.report",
]  # fmt: skip
FIELDS = [
    "conversation_id", "conversations", "body", "client_id", "message_id", "user_ids", "seq",
    "match_id", "interests", "region", "requeue", "text", "kind", "payload", "reason",
    "user_id",
]  # fmt: skip

LONE_SURROGATES = st.sampled_from(["\ud800", "\udfff", "a\udc00b", "\ud83d"])
TEXT = st.one_of(st.text(max_size=30), LONE_SURROGATES, st.just("\x00"), st.just(" "))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _field_value(world: dict[str, Any]) -> st.SearchStrategy:
    """A value for a data field: often one of the world's ids, else anything JSON."""
    return st.one_of(
        st.sampled_from(world["ids"]),
        st.lists(st.sampled_from(world["ids"]), max_size=3),
        st.dictionaries(st.sampled_from([str(i) for i in world["ids"]]), st.integers(0, 5)),
        JSON_VALUES,
    )


def _refs(index: int) -> st.SearchStrategy:
    """A usable ref unique in the burst, or an unusable one (missing, null, mistyped, long)."""
    return st.one_of(
        st.just(index),
        st.just(f"r{index}"),
        st.sampled_from(["<absent>", None, True, 1.5, [1], {"a": 1}, "x" * (REF_MAX_CHARS + 1)]),
        st.just(10**REF_MAX_CHARS),  # 65 digits
    )


@st.composite
def _object_frame(draw, index: int, world: dict[str, Any]) -> tuple[str, Any]:
    """A JSON object frame and its expected answer: ("ref", ref), ("null",) or ("none",)."""
    frame: dict[str, Any] = {}
    frame_type = draw(
        st.one_of(
            st.sampled_from(FRAME_TYPES),
            st.text(max_size=12),
            st.sampled_from(["<absent>", None, 5, ["ping"], "PING", "reply", "hello"]),
        )
    )
    if frame_type != "<absent>":
        frame["type"] = frame_type
    ref = draw(_refs(index))
    if ref != "<absent>":
        frame["ref"] = ref
    data_kind = draw(st.sampled_from(["fields", "fields", "absent", "other"]))
    if data_kind == "fields":
        keys = draw(st.lists(st.sampled_from(FIELDS), max_size=5, unique=True))
        frame["data"] = {k: draw(_field_value(world)) for k in keys}
    elif data_kind == "other":
        frame["data"] = draw(JSON_VALUES)
    if draw(st.booleans()):
        frame[draw(st.text(max_size=6))] = draw(JSON_VALUES)  # an unknown top-level field
    # What the server owes this frame (docs/protocol.md, "Frames").
    ref = frame.get("ref")
    if ref is None and frame.get("type") in REF_OPTIONAL:
        expect: tuple = ("none",)
    elif isinstance(ref, str | int) and not isinstance(ref, bool) and len(str(ref)) <= 64:
        expect = ("ref", ref)
    else:
        expect = ("null",)
    return json.dumps(frame), expect


def _frame(index: int, world: dict[str, Any]) -> st.SearchStrategy:
    """One frame to send (text, or bytes for a binary frame) and its expected answer."""
    null = ("null",)
    depth = st.integers(min_value=2_000, max_value=5_000)
    return st.one_of(
        _object_frame(index, world),
        _object_frame(index, world),
        _object_frame(index, world),
        st.tuples(st.text(max_size=40).filter(lambda t: not _is_json_object(t)), st.just(null)),
        st.tuples(
            JSON_VALUES.filter(lambda v: not isinstance(v, dict)).map(json.dumps), st.just(null)
        ),
        st.tuples(depth.map(lambda n: "[" * n + "]" * n), st.just(null)),  # past the parser
        st.tuples(depth.map(lambda n: '{"a":' * n + "1" + "}" * n), st.just(null)),
        st.tuples(st.binary(max_size=40), st.just(null)),  # a binary frame
        st.tuples(  # above frame_max_bytes, below the transport's 64 KiB: too_large
            st.integers(FRAME_MAX_BYTES + 1, 60_000).map(
                lambda n: json.dumps({"type": "ping", "ref": "big", "pad": "x" * n})
            ),
            st.just(null),
        ),
        st.tuples(  # within the limit in characters, above it in UTF-8 bytes
            st.just(
                json.dumps(
                    {"type": "ping", "ref": "e", "p": "\U0001f600" * 4_200}, ensure_ascii=False
                )
            ),
            st.just(null),
        ),
    )


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


@st.composite
def _bursts(draw, world: dict[str, Any]) -> list[tuple[str | bytes, tuple]]:
    count = draw(st.integers(min_value=1, max_value=FRAMES_PER_EXAMPLE))
    return [draw(_frame(i, world)) for i in range(count)]


def _short(burst: list) -> list:
    """The burst as a failure message shows it (a padded frame is 60 kB)."""
    return [(raw[:200], expect) for raw, expect in burst]


async def _exchange(url: str, token: str, cid: int, burst: list, n: int) -> None:
    client = await NetClient.open(url, token)
    try:
        for raw, _ in burst:
            await client.conn.send_raw(raw)
        expected_refs = [e[1] for _, e in burst if e[0] == "ref"]
        expected_nulls = sum(1 for _, e in burst if e[0] == "null")
        await client.send_raw({"type": "ping", "ref": "final"})
        replies: list[dict] = []
        async with asyncio.timeout(REPLY_TIMEOUT_SECONDS):
            while True:
                frame = await client.recv(timeout=REPLY_TIMEOUT_SECONDS)
                if frame["type"] != "reply":
                    continue  # events (message.new, live.stats, ...)
                if frame["ref"] == "final":
                    break
                replies.append(frame)
        # Frames are handled one at a time, so every earlier reply came before "final".
        got_refs = [r["ref"] for r in replies if r["ref"] is not None]
        assert sorted(map(str, got_refs)) == sorted(map(str, expected_refs)), (
            _short(burst),
            replies,
        )
        nulls = [r for r in replies if r["ref"] is None]
        assert len(nulls) == expected_nulls, (_short(burst), replies)
        assert all(not r["ok"] and r["error"]["code"] for r in nulls), nulls
        # Still usable: a real message is stored and answered.
        sent = await client.request(
            "message.send", {"conversation_id": cid, "body": "still here", "client_id": f"f{n}"}
        )
        assert sent["ok"], sent
    except ConnectionClosed as exc:
        raise AssertionError(
            f"the server closed the socket ({exc}) after {_short(burst)!r}"
        ) from exc
    finally:
        await client.close()


def _world(make_user) -> tuple[str, int, list[int]]:
    ann, bob = make_user(), make_user()
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    accept_all(conv)  # more than a request's few messages are sent
    return token_for(ann), conv.pk, [conv.pk, ann.pk, bob.pk, 1, 0, -1]


# A burst with a padded frame is tens of kB: Hypothesis warns before printing it on failure.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_random_frames_get_one_reply_each_and_leave_the_socket_usable(servers, make_user):
    (server,) = servers(1, LIMIT_WS_RATE_PER_SECOND="1000", LIMIT_WS_RATE_BURST="1000")
    token, cid, ids = _world(make_user)
    world = {"ids": ids}
    examples = iter(range(1_000_000))

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        phases=[Phase.explicit, Phase.generate],  # a failure is reported as found
        database=None,
        derandomize=True,  # the same bursts on every run (explore with it off)
    )
    @given(burst=_bursts(world))
    def run(burst):
        asyncio.run(_exchange(server.ws_url, token, cid, burst, next(examples)))

    run()
    log = server.log.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log[-5000:]
