"""``conversations.sequencer``: pure decisions, every seq once and in order whatever arrives."""

from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.sequencer import Fetch, Send, Sequencer, TooFar

CID = 7


def _synced(cursor: int | None = None, *, resume_max: int = 500, presync_max: int = 1000):
    seq = Sequencer(presync_max=presync_max, resume_max=resume_max)
    if cursor is not None:
        assert seq.resume(CID, after_seq=cursor, head=cursor, too_far=False) == []
    seq.mark_synced()
    return seq


def test_the_next_seq_is_sent_and_moves_the_cursor():
    seq = _synced(3)
    assert seq.push(CID, 4, "m4") == [Send(CID, 4, "m4")]
    assert seq.cursor(CID) == 4


def test_a_duplicate_or_old_seq_is_dropped():
    seq = _synced(5)
    assert seq.push(CID, 5, "again") == []
    assert seq.push(CID, 2, "old") == []
    assert seq.cursor(CID) == 5


def test_a_gap_asks_for_the_missing_rows_and_moves_only_with_them():
    seq = _synced(3)
    assert seq.push(CID, 6, "m6") == [Fetch(CID, 3, 6)]
    assert seq.cursor(CID) == 3
    assert [s for s in (4, 5, 6) if seq.replayed(CID, s)] == [4, 5, 6]
    assert seq.replayed(CID, 5) is False


def test_a_gap_past_the_resume_bound_is_too_far():
    seq = _synced(3, resume_max=10)
    assert seq.push(CID, 20, "m20") == [TooFar(CID, 3, 20)]
    assert seq.cursor(CID) == 20
    assert seq.push(CID, 21, "m21") == [Send(CID, 21, "m21")]


def test_first_event_of_an_unsynced_conversation_is_sent():
    seq = _synced()
    assert seq.push(CID, 42, "m") == [Send(CID, 42, "m")]


def test_events_before_sync_wait_and_are_bounded():
    seq = Sequencer(presync_max=2, resume_max=500)
    assert seq.push(CID, 4, "a") == [] and seq.push(CID, 5, "b") == []
    assert seq.push(CID, 6, "c") == []  # past the buffer: dropped, later fetched as a gap
    seq.resume(CID, after_seq=3, head=6, too_far=False)
    assert seq.mark_synced() == [(CID, 4, "a"), (CID, 5, "b")]


def test_resume_clamps_a_cursor_past_the_head_and_reports_too_far():
    seq = Sequencer(presync_max=10, resume_max=500)
    assert seq.resume(CID, after_seq=99, head=10, too_far=False) == []
    assert seq.cursor(CID) == 10
    assert seq.resume(CID, after_seq=1, head=900, too_far=True) == [TooFar(CID, 1, 900)]
    assert seq.cursor(CID) == 900


def test_my_own_send_is_delivered_by_its_reply_when_it_is_the_next():
    seq = _synced(3)
    assert seq.sent(CID, 4) is True  # the next one: the reply delivers it
    assert seq.push(CID, 4, "echo") == []
    assert seq.sent(CID, 7) is False  # 5 and 6 still on their way: 7's push delivers it
    assert seq.cursor(CID) == 4
    assert seq.push(CID, 7, "m7") == [Fetch(CID, 4, 7)]
    assert Sequencer(presync_max=10, resume_max=500).sent(CID, 1) is False  # before sync


def test_joining_while_synced_fetches_what_was_sent_before_the_subscription():
    seq = _synced()
    assert seq.joined(CID, 12) == [Fetch(CID, 12, None)]
    seq.left(CID)
    assert seq.cursor(CID) is None
    unsynced = Sequencer(presync_max=10, resume_max=500)
    assert unsynced.joined(CID, 12) == []


class _Client:
    """Runs the sequencer's actions against a conversation of stored seqs 1..head."""

    def __init__(self, seq: Sequencer, head: int):
        self.seq, self.head, self.got = seq, head, []

    def perform(self, actions):
        for action in actions:
            if isinstance(action, Send):
                self.got.append(action.seq)
            elif isinstance(action, Fetch):
                upto = self.head if action.upto_seq is None else action.upto_seq
                for s in range(action.after_seq + 1, upto + 1):
                    if self.seq.replayed(CID, s):
                        self.got.append(s)
            else:
                raise AssertionError(f"unexpected {action}")


OPS = st.sampled_from(["new", "new_lost", "send", "deliver", "duplicate", "sync"])


@settings(max_examples=400, deadline=None)
@given(ops=st.lists(OPS, max_size=60), cursor=st.integers(0, 12), data=st.data())
def test_any_interleaving_yields_each_seq_once_in_order(ops, cursor, data):
    """Messages stored over time (some sent by this connection, whose reply delivers them);
    their pushes lost, delayed, reordered or duplicated; a resume at any point from any
    cursor; gap fills and replays: the client gets every seq after its cursor exactly once,
    in order, up to the newest."""
    seq = Sequencer(presync_max=data.draw(st.integers(0, 6), label="presync"), resume_max=1000)
    client = _Client(seq, head=0)
    in_flight: list[int] = []  # published, not yet delivered to this socket
    start = None

    def sync() -> int:
        after = min(cursor, client.head)
        client.perform(seq.resume(CID, after_seq=cursor, head=client.head, too_far=False))
        for s in range(after + 1, client.head + 1):  # the replay read from the database
            if seq.replayed(CID, s):
                client.got.append(s)
        for cid, s, item in seq.mark_synced():
            client.perform(seq.push(cid, s, item))
        return after

    def deliver(s: int) -> None:
        client.perform(seq.push(CID, s, f"m{s}"))

    for op in ops:
        if op in ("new", "new_lost", "send"):
            client.head += 1
            if op != "new_lost":
                in_flight.append(client.head)
            if op == "send" and seq.sent(CID, client.head):  # sent here: the reply delivers it
                client.got.append(client.head)
        elif op == "deliver" and in_flight:
            deliver(in_flight.pop(data.draw(st.integers(0, len(in_flight) - 1), label="which")))
        elif op == "duplicate" and client.head:
            deliver(data.draw(st.integers(1, client.head), label="duplicate"))
        elif op == "sync" and start is None:
            start = sync()
    if start is None:
        start = sync()
    while in_flight:
        deliver(in_flight.pop(data.draw(st.integers(0, len(in_flight) - 1), label="late")))
    if client.head:
        deliver(client.head)  # the newest message reaches the socket at least once
    assert client.got == list(range(start + 1, client.head + 1))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    synced=st.booleans(),
    cursor=st.one_of(st.none(), st.integers(0, 20)),
    seq=st.integers(1, 30),
)
def test_push_sends_says_what_push_does_without_doing_it(synced, cursor, seq):
    """The fan-out's synchronous path decides with ``push_sends`` and only then pushes:
    it must predict ``push`` exactly, and change nothing itself."""
    seq_ = Sequencer(presync_max=10, resume_max=5)
    if cursor is not None:
        seq_.resume(CID, after_seq=cursor, head=cursor, too_far=False)
    if synced:
        seq_.mark_synced()
    before = (dict(seq_.cursors), list(seq_.presync))
    predicted = seq_.push_sends(CID, seq)
    assert (dict(seq_.cursors), list(seq_.presync)) == before
    actions = seq_.push(CID, seq, "m")
    if predicted is True:
        assert actions == [Send(CID, seq, "m")]
    elif predicted is False:
        assert actions == []
    else:
        assert len(actions) == 1 and isinstance(actions[0], Fetch | TooFar)
