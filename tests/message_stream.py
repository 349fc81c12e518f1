"""A stream of messages kept flowing through a fault, by clients that follow docs/protocol.md.

Fault tests (tests/realtime/test_bus_outage.py, tests/switchboard/test_db_outage.py) break a
service under a sender and a reader of one conversation and then count what arrived:

- the sender sends ``m0``, ``m1``, ... one at a time. A send answered with an error is sent
  again with the same ``client_id`` after a short pause; a closed socket is reopened (with
  back-off while the server closes it 1013) and the unanswered send is sent again. A send
  left without a reply on an open socket for ``reply_timeout`` is *silence*: counted, then
  sent again;
- the reader keeps a cursor (the last ``seq`` it holds) and records every ``message.new`` it
  gets. When its socket closes, or a ``seq`` is not the next one (a gap), it reconnects and
  sends ``sync`` from its cursor, as the protocol's client checklist says.

The test then asserts on ``acked`` (client_id -> seq of every ``ok`` reply), ``received``
(every delivery, in arrival order), ``errors`` (error replies by code), ``silent``, ``gaps``
and ``slowest_reply``.
"""

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from switchboard_client import ConnectError, ConnectionClosed
from tests.conftest import NetClient

# A pause between two sends: the frame rate limit (20/s per socket) never closes the sender.
SEND_INTERVAL_SECONDS = 0.06
# After an error reply or a failed (re)connect, before trying again.
RETRY_PAUSE_SECONDS = 0.2
OPEN_TIMEOUT_SECONDS = 10.0
# Failures of a (re)connect that mean "try again later": a close (1013), a refused TCP
# connect, a refused or dropped upgrade (a proxy whose upstream died under it): all three are
# ConnectError; no hello or sync reply in time, or a sync answered with an error.
_OPEN_FAILURES = (ConnectError, ConnectionClosed, TimeoutError)


class _SyncRefused(Exception):
    pass


async def _open(url: str, token: str, sync: dict[str, int] | None, deadline: float) -> NetClient:
    """Open a socket (and ``sync``), trying again until ``deadline``."""
    while True:
        try:
            client = await asyncio.wait_for(NetClient.open(url, token), OPEN_TIMEOUT_SECONDS)
            if sync is not None:
                reply = await client.request("sync", {"conversations": sync}, timeout=10)
                if not reply["ok"]:
                    await client.close()
                    raise _SyncRefused(reply)
                client.sync_reply = reply
            return client
        except (*_OPEN_FAILURES, _SyncRefused):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(RETRY_PAUSE_SECONDS)


@dataclass
class MessageStream:
    send_url: str
    read_url: str
    sender_token: str
    reader_token: str
    conversation_id: int
    # Past this, an unanswered send on an open socket counts as silence.
    reply_timeout: float = 10.0
    # Nothing in the stream waits for a service longer than this (connects, replies).
    give_up_after: float = 45.0

    acked: dict[str, int] = field(default_factory=dict)
    received: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    silent: int = 0
    gaps: int = 0
    sender_reconnects: int = 0
    reader_reconnects: int = 0
    cursor: int = 0
    slowest_reply: float = 0.0  # seconds, over every reply (ok or error)

    def __post_init__(self) -> None:
        self.sent = 0  # messages acknowledged so far (the next client_id's number)
        self._stop = asyncio.Event()
        self._deadline = time.monotonic() + self.give_up_after
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def started_with_probe(
        cls, sender: Any, reader: Any, tokens: tuple[str, str], conversation_id: int
    ) -> tuple["MessageStream", NetClient]:
        """A stream from a socket on ``sender`` to one on ``reader`` (server processes),
        started, and another of the sender's devices on ``reader`` to ask things of."""
        stream = cls(
            send_url=sender.ws_url,
            read_url=reader.ws_url,
            sender_token=tokens[0],
            reader_token=tokens[1],
            conversation_id=conversation_id,
        )
        await stream.start()
        try:
            probe = await NetClient.open(reader.ws_url, tokens[0], sync={})
        except BaseException:
            await stream.close()
            raise
        return stream, probe

    # -- running -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open both sockets, then stream in the background until ``stop``."""
        self._reader = await _open(self.read_url, self.reader_token, {}, self._deadline)
        self._sender = await _open(self.send_url, self.sender_token, {}, self._deadline)
        self._tasks = [
            asyncio.create_task(self._send_loop()),
            asyncio.create_task(self._read_loop()),
        ]

    @property
    def reader_user_id(self) -> int:
        return self._reader.hello["data"]["user_id"]

    async def stop_sending(self) -> None:
        """Finish the send in flight (until it is acknowledged) and send no more."""
        self._stop.set()
        await asyncio.wait_for(self._tasks[0], self.give_up_after)

    async def wait_received(self, count: int, timeout: float) -> None:
        """Return once the reader's cursor reached ``count``; raise if it does not in time."""
        deadline = time.monotonic() + timeout
        self._failed_raise()  # also when there is nothing to wait for
        while self.cursor < count:
            self._failed_raise()
            assert time.monotonic() < deadline, f"read {self.cursor} of {count}: {self._summary()}"
            await asyncio.sleep(0.05)

    async def wait_acked(self, count: int, timeout: float) -> None:
        """Return once ``count`` sends were acknowledged in all."""
        deadline = time.monotonic() + timeout
        self._failed_raise()
        while len(self.acked) < count:
            self._failed_raise()
            assert time.monotonic() < deadline, f"{count} not acknowledged: {self._summary()}"
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Cancel what still runs and close both sockets (also after a failure)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in (getattr(self, "_sender", None), getattr(self, "_reader", None)):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()

    def _failed_raise(self) -> None:
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    # -- the sender ------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while not self._stop.is_set():
            client_id = f"m{self.sent}"
            data = {
                "conversation_id": self.conversation_id,
                "body": f"body of {client_id}",
                "client_id": client_id,
            }
            self.acked[client_id] = await self._send_until_ok(data)
            self.sent += 1
            await asyncio.sleep(SEND_INTERVAL_SECONDS)

    async def _send_until_ok(self, data: dict) -> int:
        """Send ``data`` until an ``ok`` reply; return the stored seq."""
        while True:
            assert time.monotonic() < self._deadline, f"{data['client_id']} never acknowledged"
            asked = time.monotonic()
            try:
                reply = await self._sender.request("message.send", data, self.reply_timeout)
                self.slowest_reply = max(self.slowest_reply, time.monotonic() - asked)
            except TimeoutError:
                self.silent += 1  # the socket is open, the request got no reply
                continue
            except ConnectionClosed:
                self.sender_reconnects += 1
                self._sender = await _open(self.send_url, self.sender_token, {}, self._deadline)
                continue
            if reply["ok"]:
                return reply["data"]["message"]["seq"]
            self.errors[reply["error"]["code"]] += 1
            await asyncio.sleep(RETRY_PAUSE_SECONDS)

    # -- the reader ------------------------------------------------------------------

    async def _read_loop(self) -> None:
        pending = self._reader.events  # what arrived during the sync (the replay)
        self._reader.events = []
        while True:
            resync = False
            for frame in pending:
                resync = await self._deliver(frame) or resync
            pending = []
            if not resync:
                try:
                    frame = await self._reader.recv(timeout=3600)
                except ConnectionClosed:
                    resync = True
                else:
                    pending = [frame]
                    continue
            self.reader_reconnects += 1
            with contextlib.suppress(Exception):
                await self._reader.close()
            sync = {str(self.conversation_id): self.cursor}
            self._reader = await _open(self.read_url, self.reader_token, sync, self._deadline)
            pending, self._reader.events = self._reader.events, []

    async def _deliver(self, frame: dict) -> bool:
        """Record a frame; return whether the reader must resync (a gap)."""
        if frame["type"] != "message.new":
            return False
        seq = frame["data"]["seq"]
        self.received.append(seq)
        if seq > self.cursor + 1:
            self.gaps += 1
            return True
        if seq == self.cursor + 1:
            self.cursor = seq
        return False

    # -- the verdict -----------------------------------------------------------------

    def assert_exactly_once(self) -> None:
        """Every acknowledged message reached the reader once, in seq order; nothing else."""
        seqs = sorted(self.acked.values())
        assert seqs == list(range(1, len(seqs) + 1)), "acknowledged seqs are not 1..n"
        assert self.received == seqs, self._summary()
        assert self.gaps == 0 and self.silent == 0, self._summary()

    def _summary(self) -> str:
        dupes = [s for s, n in Counter(self.received).items() if n > 1]
        missing = sorted(set(self.acked.values()) - set(self.received))
        return (
            f"acked={len(self.acked)} received={len(self.received)} duplicated={dupes[:20]} "
            f"missing={missing[:20]} gaps={self.gaps} silent={self.silent} "
            f"errors={dict(self.errors)} reconnects: sender={self.sender_reconnects} "
            f"reader={self.reader_reconnects}"
        )


def assert_stored_once(rows: list[tuple[str, int]], acked: dict[str, int]) -> None:
    """The stored ``(client_id, seq)`` rows: each acknowledged client_id once, with its seq."""
    counts = Counter(client_id for client_id, _ in rows)
    assert [c for c, n in counts.items() if n > 1] == []
    assert dict(rows) == acked


async def live_both_ways(a, b, ann_token: str, bob_token: str, cid: int, after_seq: int) -> None:
    """Fresh sockets on servers ``a`` and ``b`` exchange a message each way, pushed live
    (each the next seq after ``after_seq``: no gap fill from the database involved)."""
    cursors = {str(cid): after_seq}
    ann = await NetClient.open(a.ws_url, ann_token, sync=cursors)
    bob = await NetClient.open(b.ws_url, bob_token, sync=cursors)
    try:
        for me, other, seq in [(ann, bob, after_seq + 1), (bob, ann, after_seq + 2)]:
            data = {"conversation_id": cid, "body": "live?", "client_id": f"live-{seq}"}
            reply = await me.request("message.send", data, timeout=10)
            assert reply["ok"] and reply["data"]["message"]["seq"] == seq, reply
            assert (await other.event("message.new", timeout=10))["data"]["seq"] == seq
    finally:
        await ann.close()
        await bob.close()
