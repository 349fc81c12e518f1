"""``conversations.sequencer``: pure decisions, every seq once and in order whatever arrives."""

from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.sequencer import Fetch, FetchChanges, Send, Sequencer, TooFar, Wait

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


def test_a_gap_still_open_after_the_wait_asks_for_the_missing_rows_and_moves_only_with_them():
    seq = _synced(3)
    (wait,) = seq.push(CID, 6, "m6")
    assert isinstance(wait, Wait) and seq.cursor(CID) == 3
    assert seq.push(CID, 7, "m7") == []  # held too, under the same wait
    assert seq.push_sends(CID, 4) is None  # held pushes: the slow path decides
    assert seq.gap_due(CID, wait.token) == [Fetch(CID, 3, 7)]
    assert seq.cursor(CID) == 3
    assert [s for s in (4, 5, 6, 7) if seq.replayed(CID, s)] == [4, 5, 6, 7]
    assert seq.replayed(CID, 5) is False
    assert seq.gap_due(CID, wait.token) == []  # once


def test_pushes_reordered_across_processes_fill_their_gap_without_a_read():
    seq = _synced(3)
    (wait,) = seq.push(CID, 6, "m6")
    assert seq.push(CID, 5, "m5") == []
    assert seq.push(CID, 4, "m4") == [Send(CID, 4, "m4"), Send(CID, 5, "m5"), Send(CID, 6, "m6")]
    assert seq.cursor(CID) == 6 and seq.push_sends(CID, 7) is True
    assert seq.gap_due(CID, wait.token) == []  # the wait found nothing left to do
    (again,) = seq.push(CID, 9, "m9")  # a new gap: a new wait; the old one is spent
    assert again.token != wait.token and seq.gap_due(CID, wait.token) == []
    assert seq.gap_due(CID, again.token) == [Fetch(CID, 6, 9)]


def test_too_many_held_pushes_read_the_gap_at_once():
    seq = Sequencer(presync_max=10, resume_max=500, held_max=2)
    seq.resume(CID, after_seq=3, head=3, too_far=False)
    seq.mark_synced()
    assert isinstance(seq.push(CID, 5, "a")[0], Wait) and seq.push(CID, 6, "b") == []
    assert seq.push(CID, 8, "c") == [Fetch(CID, 3, 8)]
    assert seq.held == {} and seq.push_sends(CID, 4) is True


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
    assert isinstance(seq.push(CID, 7, "m7")[0], Wait)
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
        self.waits: list[Wait] = []  # reorder waits not yet over

    def perform(self, actions):
        for action in actions:
            if isinstance(action, Send):
                self.got.append(action.seq)
            elif isinstance(action, Fetch):
                upto = self.head if action.upto_seq is None else action.upto_seq
                for s in range(action.after_seq + 1, upto + 1):
                    if self.seq.replayed(CID, s):
                        self.got.append(s)
            elif isinstance(action, Wait):
                self.waits.append(action)
            else:
                raise AssertionError(f"unexpected {action}")

    def wait_over(self, index: int) -> None:
        wait = self.waits.pop(index)
        self.perform(self.seq.gap_due(wait.conversation_id, wait.token))


OPS = st.sampled_from(["new", "new_lost", "send", "deliver", "duplicate", "sync", "wait_over"])


@settings(max_examples=400, deadline=None)
@given(ops=st.lists(OPS, max_size=60), cursor=st.integers(0, 12), data=st.data())
def test_any_interleaving_yields_each_seq_once_in_order(ops, cursor, data):
    """Messages stored over time (some sent by this connection, whose reply delivers them);
    their pushes lost, delayed, reordered or duplicated; a resume at any point from any
    cursor; reorder waits ending at any point, gap fills and replays: the client gets every
    seq after its cursor exactly once, in order, up to the newest."""
    seq = Sequencer(
        presync_max=data.draw(st.integers(0, 6), label="presync"),
        resume_max=1000,
        held_max=data.draw(st.integers(1, 4), label="held_max"),
    )
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
        elif op == "wait_over" and client.waits:
            client.wait_over(data.draw(st.integers(0, len(client.waits) - 1), label="wait"))
    if start is None:
        start = sync()
    while in_flight:
        deliver(in_flight.pop(data.draw(st.integers(0, len(in_flight) - 1), label="late")))
    if client.head:
        deliver(client.head)  # the newest message reaches the socket at least once
    while client.waits:  # every wait ends
        client.wait_over(0)
    assert client.got == list(range(start + 1, client.head + 1))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    synced=st.booleans(),
    cursor=st.one_of(st.none(), st.integers(0, 20)),
    seq=st.integers(1, 30),
    held=st.one_of(st.none(), st.integers(2, 6)),
)
def test_push_sends_says_what_push_does_without_doing_it(synced, cursor, seq, held):
    """The fan-out's synchronous path decides with ``push_sends`` and only then pushes:
    it must predict ``push`` exactly, and change nothing itself."""
    seq_ = Sequencer(presync_max=10, resume_max=5)
    if cursor is not None:
        seq_.resume(CID, after_seq=cursor, head=cursor, too_far=False)
    if synced:
        seq_.mark_synced()
        if cursor is not None and held is not None:  # pushes held past a gap
            seq_.push(CID, cursor + held, "held")
    before = (
        dict(seq_.cursors),
        list(seq_.presync),
        {k: (h.token, dict(h.pushes)) for k, h in seq_.held.items()},
    )
    predicted = seq_.push_sends(CID, seq)
    after = {k: (h.token, h.pushes) for k, h in seq_.held.items()}
    assert (dict(seq_.cursors), list(seq_.presync), after) == before
    actions = seq_.push(CID, seq, "m")
    if predicted is True:
        assert actions == [Send(CID, seq, "m")]
    elif predicted is False:
        assert actions == []
    else:
        assert all(isinstance(a, Send | Fetch | TooFar | Wait) for a in actions)


# -- changes (edits and deletions) ----------------------------------------------------------


def _synced_changes(floor: int | None, cursor: int = 10) -> Sequencer:
    seq = Sequencer(presync_max=10, resume_max=500)
    seq.resume(CID, after_seq=cursor, head=cursor, too_far=False, change_head=floor)
    seq.mark_synced()
    return seq


def test_the_next_change_is_sent_an_old_one_dropped_and_a_gap_read():
    seq = _synced_changes(3)
    assert seq.changed(CID, 4, 2, "c4") == [Send(CID, 2, "c4")]
    assert seq.changed(CID, 4, 2, "again") == [] and seq.changed(CID, 1, 5, "old") == []
    assert seq.changed(CID, 7, 5, "c7") == [FetchChanges(CID, 4)]
    seq.changes_fetched(CID, 7)
    assert seq.changed(CID, 6, 1, "c6") == []  # read with the gap
    assert seq.changed(CID, 8, 1, "c8") == [Send(CID, 1, "c8")]


def test_a_change_of_a_message_not_given_yet_reads_the_message():
    seq = _synced_changes(0, cursor=3)
    assert seq.changed(CID, 1, 5, "c1") == [Fetch(CID, 3, 5)]  # not sent: the row is newer
    assert seq.change_floors[CID] == 1
    assert seq.changed(CID, 3, 4, "c3") == [Fetch(CID, 3, 4), FetchChanges(CID, 1)]


def test_without_a_change_cursor_changes_start_at_the_first_live_one():
    seq = _synced_changes(None)
    assert seq.changed(CID, 5, 1, "c5") == [Send(CID, 1, "c5")]
    assert seq.changed(CID, 7, 1, "c7") == [FetchChanges(CID, 5)]


def test_changes_before_sync_wait_and_follow_the_messages():
    seq = Sequencer(presync_max=1, resume_max=500)
    assert seq.changed(CID, 2, 1, "c2") == [] and seq.changed(CID, 3, 1, "dropped") == []
    seq.resume(CID, after_seq=5, head=5, too_far=False, change_head=1)
    seq.mark_synced()
    assert seq.presync_changes_take() == [(CID, 2, 1, "c2")]
    assert seq.changed(CID, 2, 1, "c2") == [Send(CID, 1, "c2")]


def test_joined_unnamed_and_left_set_and_forget_the_floor():
    seq = _synced_changes(None)
    seq.joined(8, 4, 2)
    seq.unnamed(9, 6, 3)
    assert (seq.change_floors[8], seq.change_floors[9], seq.cursor(9)) == (2, 3, 6)
    seq.left(9)
    assert 9 not in seq.change_floors and seq.cursor(9) is None


class _ChangeClient:
    """A connection's client, and the database it reads changes from: message seq ->
    its last change number (every message is at or below the cursor)."""

    def __init__(self, seq: Sequencer, messages: int) -> None:
        self.seq = seq
        self.db = dict.fromkeys(range(1, messages + 1), 0)
        self.head = 0
        self.given: list[int] = []  # the change numbers delivered, in order
        self.shown = dict.fromkeys(self.db, 0)  # what the client shows of each message

    def show(self, message: int, change: int) -> None:
        self.given.append(change)
        self.shown[message] = change

    def perform(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.show(action.seq, int(action.item))
            elif isinstance(action, FetchChanges):
                rows = sorted((c, m) for m, c in self.db.items() if c > action.after_change_seq)
                for change, message in rows:
                    self.show(message, change)
                self.seq.changes_fetched(CID, self.head)
            else:
                raise AssertionError(f"unexpected {action}")


CHANGE_OPS = st.sampled_from(["change", "change_lost", "deliver", "duplicate", "sync"])


@settings(max_examples=400, deadline=None)
@given(ops=st.lists(CHANGE_OPS, max_size=50), start=st.integers(0, 6), data=st.data())
def test_any_interleaving_of_changes_yields_each_once_in_order(ops, start, data):
    """Edits and deletions of messages the client holds, over time; their pushes lost,
    delayed, reordered or duplicated; a resume at any point from any change cursor: the
    client is given changes in increasing change order, none twice, and ends showing every
    message as the database holds it."""
    seq = Sequencer(presync_max=data.draw(st.integers(0, 4), label="presync"), resume_max=500)
    client = _ChangeClient(seq, messages=4)
    in_flight: list[tuple[int, int]] = []  # (change, message) published, not yet delivered
    published: list[tuple[int, int]] = []
    synced_from = None

    def sync() -> int:
        after = min(start, client.head)
        client.perform(seq.resume(CID, after_seq=4, head=4, too_far=False, change_head=client.head))
        for change, message in sorted((c, m) for m, c in client.db.items() if c > after):
            client.show(message, change)  # the replay read from the database
        seq.mark_synced()
        for cid, change, message, item in seq.presync_changes_take():
            client.perform(seq.changed(cid, change, message, item))
        return after

    def deliver(change: int, message: int) -> None:
        client.perform(seq.changed(CID, change, message, str(change)))

    for op in ops:
        if op in ("change", "change_lost"):
            client.head += 1
            message = data.draw(st.integers(1, 4), label="message")
            client.db[message] = client.head
            if op == "change":
                in_flight.append((client.head, message))
                published.append((client.head, message))
        elif op == "deliver" and in_flight:
            deliver(*in_flight.pop(data.draw(st.integers(0, len(in_flight) - 1), label="which")))
        elif op == "duplicate" and published:
            deliver(*data.draw(st.sampled_from(published), label="duplicate"))
        elif op == "sync" and synced_from is None:
            synced_from = sync()
    if synced_from is None:
        synced_from = sync()
    while in_flight:
        deliver(*in_flight.pop(data.draw(st.integers(0, len(in_flight) - 1), label="late")))
    if client.head:  # the newest change reaches the socket at least once
        deliver(client.head, next(m for m, c in client.db.items() if c == client.head))
    after_sync = [c for c in client.given if c > synced_from]
    assert after_sync == sorted(set(after_sync))
    assert {m: c for m, c in client.shown.items() if c > synced_from} == {
        m: c for m, c in client.db.items() if c > synced_from
    }


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    synced=st.booleans(),
    floor=st.one_of(st.none(), st.integers(0, 10)),
    change=st.integers(1, 14),
    message=st.integers(1, 14),
)
def test_changed_sends_says_what_changed_does_without_doing_it(synced, floor, change, message):
    seq = Sequencer(presync_max=10, resume_max=500)
    seq.resume(CID, after_seq=8, head=8, too_far=False, change_head=floor)
    if synced:
        seq.mark_synced()
    before = (dict(seq.change_floors), dict(seq.cursors), list(seq.presync_changes))
    predicted = seq.changed_sends(CID, change, message)
    assert (dict(seq.change_floors), dict(seq.cursors), list(seq.presync_changes)) == before
    actions = seq.changed(CID, change, message, "c")
    if predicted is True:
        assert actions == [Send(CID, message, "c")]
    elif predicted is False:
        assert not [a for a in actions if isinstance(a, Send)]
        assert not [a for a in actions if isinstance(a, (Fetch, FetchChanges))]
