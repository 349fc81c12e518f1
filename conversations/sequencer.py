"""The sequencer of one connection: which message of which conversation to deliver, when.

Pure: no I/O, no clock. It keeps, per conversation, the highest ``seq`` the client has been
given (its cursor) and answers every input with the actions to take; the caller
(``conversations.gateway``) performs them and reports back what it delivered. Whatever the
channel layer does (duplicates, reordering, loss) and whenever the client resumes, the
client is given each seq once, in order:

- a live push of the next seq is sent (``Send``); one at or below the cursor is dropped;
- a push past a gap is held a moment (``Wait``: the caller calls ``gap_due`` after the
  reorder wait): pushes reordered across server processes (process B's seq 6 published
  before process A's 5 arrived) fill their gap by themselves, and the held pushes follow in
  order. A gap still open at ``gap_due`` (a push lost), or more than ``held_max`` held, asks
  for the missing seqs from the database (``Fetch``); more than ``resume_max`` missing tells
  the client to re-fetch by REST (``TooFar``);
- pushes that arrive before the client's ``sync`` wait (at most ``presync_max``; past that
  they are dropped, and the gap they leave is fetched like any other);
- a replayed or fetched row is delivered only if it is past the cursor (``replayed``).

Edits and deletions (``changed``) are numbered per conversation too (``change_seq``, handed
out in commit order), with a second cursor, the change floor: the connection has been given
every change up to it. A change at or below the floor is dropped; the next one is sent; one
past a gap asks for the changes after the floor from the database (``FetchChanges``: each
changed message once, in its current state, in change order), and the floor moves to the
change head read with them. A change of a message the client has not been given yet (its
``message.new`` is late or lost) reads that message instead, in its current state
(``Fetch``). Changes that arrive before ``sync`` wait, like messages, and follow them.
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Send:
    """Deliver this live event as it is (the cursor already moved to ``seq``)."""

    conversation_id: int
    seq: int
    item: Any


@dataclass(frozen=True)
class Fetch:
    """Read the seqs in ``(after_seq, upto_seq]`` (``upto_seq`` None: all) and replay them."""

    conversation_id: int
    after_seq: int
    upto_seq: int | None


@dataclass(frozen=True)
class TooFar:
    """Tell the client it missed ``(after_seq, latest_seq]``: re-fetch by REST."""

    conversation_id: int
    after_seq: int
    latest_seq: int


@dataclass(frozen=True)
class Wait:
    """Pushes past a gap are held: call ``gap_due(conversation_id, token)`` after the
    reorder wait."""

    conversation_id: int
    token: int


@dataclass(frozen=True)
class FetchChanges:
    """Read the changes after ``after_change_seq`` (of messages the client holds), replay
    them, and report the change head read with them (``changes_fetched``)."""

    conversation_id: int
    after_change_seq: int


Action = Send | Fetch | TooFar | Wait | FetchChanges


@dataclass
class _Held:
    """A conversation's pushes past its gap (seq -> item), under the wait of ``token``."""

    token: int
    pushes: dict[int, Any]


@dataclass
class Sequencer:
    presync_max: int
    resume_max: int
    held_max: int = 64
    cursors: dict[int, int] = field(default_factory=dict)
    synced: bool = False
    presync: list[tuple[int, int, Any]] = field(default_factory=list)
    held: dict[int, _Held] = field(default_factory=dict)  # per conversation with a gap
    # Per conversation: every change up to this one has been given (see the module's text).
    change_floors: dict[int, int] = field(default_factory=dict)
    presync_changes: list[tuple[int, int, int, Any]] = field(default_factory=list)
    _tokens: int = 0

    def push(self, conversation_id: int, seq: int, item: Any) -> list[Action]:
        """A live event with ``seq`` arrived; return what to do with it."""
        if not self.synced:
            if len(self.presync) < self.presync_max:
                self.presync.append((conversation_id, seq, item))
            return []
        cursor = self.cursors.get(conversation_id)
        if cursor is not None and seq <= cursor:
            return []  # already delivered (replay, gap fill or a duplicate push)
        if cursor is not None and seq > cursor + 1:
            return self._hold(conversation_id, cursor, seq, item)
        # The next seq, or the first event of a conversation the client did not sync.
        self.cursors[conversation_id] = seq
        return [Send(conversation_id, seq, item), *self._flush(conversation_id)]

    def changed(self, conversation_id: int, change_seq: int, seq: int, item: Any) -> list[Action]:
        """A live edit or deletion (``change_seq``) of the message ``seq`` arrived."""
        if not self.synced:
            if len(self.presync_changes) < self.presync_max:
                self.presync_changes.append((conversation_id, change_seq, seq, item))
            return []  # past the bound: dropped, and a gap the next change reads
        floor = self.change_floors.get(conversation_id)
        if floor is not None and change_seq <= floor:
            return []  # already given (replayed, fetched, or a duplicate push)
        actions: list[Action] = []
        cursor = self.cursors.get(conversation_id)
        unseen = cursor is not None and seq > cursor
        if unseen:
            # Its message.new has not reached the client: read it in its current state.
            assert cursor is not None
            actions.append(self._gap(conversation_id, cursor, seq))
        if floor is None or change_seq == floor + 1:
            # The next change, or the first of a conversation without a floor.
            self.change_floors[conversation_id] = change_seq
            if not unseen:
                actions.append(Send(conversation_id, seq, item))
            return actions
        actions.append(FetchChanges(conversation_id, floor))
        return actions

    def changed_sends(self, conversation_id: int, change_seq: int, seq: int) -> bool | None:
        """What ``changed`` would do, without doing it: True, one ``Send`` of it; False,
        nothing to send (a duplicate, or held until ``sync``); None, a read to make."""
        if not self.synced:
            return False
        floor = self.change_floors.get(conversation_id)
        if floor is not None and change_seq <= floor:
            return False
        cursor = self.cursors.get(conversation_id)
        if cursor is not None and seq > cursor:
            return None
        return True if floor is None or change_seq == floor + 1 else None

    def fetch_upto(self, conversation_id: int, upto_seq: int) -> list[Action]:
        """The client must be given the messages up to ``upto_seq`` first (a changed one it
        has not been given): read those past the cursor (or say too far)."""
        cursor = self.cursors.get(conversation_id)
        if cursor is None or upto_seq <= cursor:
            return []
        return [self._gap(conversation_id, cursor, upto_seq)]

    def changes_fetched(self, conversation_id: int, change_head: int) -> None:
        """The changes after the floor were read and replayed, up to ``change_head``."""
        floor = self.change_floors.get(conversation_id)
        if floor is None or floor < change_head:
            self.change_floors[conversation_id] = change_head

    def presync_changes_take(self) -> list[tuple[int, int, int, Any]]:
        """The changes that arrived before ``sync`` (after ``mark_synced``: ``changed``
        each in turn, after the messages)."""
        queued, self.presync_changes = self.presync_changes, []
        return queued

    def gap_due(self, conversation_id: int, token: int) -> list[Action]:
        """The reorder wait of ``Wait(conversation_id, token)`` is over: the held pushes
        that are now next are sent; a gap still open is read (or too far)."""
        held = self.held.get(conversation_id)
        if held is None or held.token != token:
            return []  # a wait since ended (its gap filled, or the conversation reset)
        actions = self._flush(conversation_id)
        held = self.held.pop(conversation_id, None)
        if held is not None:
            upto = max(held.pushes)
            actions.append(self._gap(conversation_id, self.cursors[conversation_id], upto))
        return actions

    def _hold(self, conversation_id: int, cursor: int, seq: int, item: Any) -> list[Action]:
        held = self.held.get(conversation_id)
        if seq - cursor > self.resume_max or (
            held is not None and len(held.pushes) >= self.held_max
        ):
            self.held.pop(conversation_id, None)
            upto = max(seq, *held.pushes) if held is not None else seq
            return [self._gap(conversation_id, cursor, upto)]
        if held is not None:
            held.pushes[seq] = item
            return []
        self._tokens += 1
        self.held[conversation_id] = _Held(self._tokens, {seq: item})
        return [Wait(conversation_id, self._tokens)]

    def _flush(self, conversation_id: int) -> list[Action]:
        """Send the held pushes that follow the cursor, in order; drop those behind it."""
        held = self.held.get(conversation_id)
        if held is None:
            return []
        pushes, cursor = held.pushes, self.cursors[conversation_id]
        sends: list[Action] = []
        while cursor + 1 in pushes:
            cursor += 1
            sends.append(Send(conversation_id, cursor, pushes.pop(cursor)))
        self.cursors[conversation_id] = cursor
        for stale in [s for s in pushes if s <= cursor]:
            del pushes[stale]
        if not pushes:
            del self.held[conversation_id]
        return sends

    def push_sends(self, conversation_id: int, seq: int) -> bool | None:
        """What ``push`` of ``seq`` would do, without doing it: True, one ``Send`` of it;
        False, nothing to send (a duplicate, or held until ``sync``); None, a gap to read."""
        if not self.synced:
            return False
        cursor = self.cursors.get(conversation_id)
        if cursor is not None and seq <= cursor:
            return False
        if conversation_id in self.held:
            return None  # pushes held past a gap: decided (and followed) on the slow path
        return True if cursor is None or seq == cursor + 1 else None

    def _gap(self, conversation_id: int, cursor: int, upto: int) -> Action:
        if upto - cursor > self.resume_max:
            self.cursors[conversation_id] = upto
            return TooFar(conversation_id, cursor, upto)
        return Fetch(conversation_id, cursor, upto)  # the cursor moves as rows are replayed

    def replayed(self, conversation_id: int, seq: int) -> bool:
        """A stored message (resume, gap fill) is about to be sent: return whether to send it."""
        cursor = self.cursors.get(conversation_id)
        if cursor is not None and seq <= cursor:
            return False
        self.cursors[conversation_id] = seq
        return True

    def sent(self, conversation_id: int, seq: int) -> bool:
        """This connection stored ``seq``: return whether its reply delivers it here.

        It does when ``seq`` is the next one (or the first of a conversation the client did
        not sync) after ``sync``: the cursor moves and the message's push is then dropped
        here as a duplicate. Otherwise (messages before it still on their way, or no
        ``sync`` yet) the push delivers it in its turn, as for anyone. The client applies
        the same rule to the reply (docs/protocol.md, "message.send").
        """
        if not self.synced:
            return False
        cursor = self.cursors.get(conversation_id)
        if cursor is not None and seq != cursor + 1:
            return False
        self.cursors[conversation_id] = seq
        return True

    def resume(
        self,
        conversation_id: int,
        *,
        after_seq: int,
        head: int,
        too_far: bool,
        change_head: int | None = None,
    ) -> list[Action]:
        """The client resumes a conversation from ``after_seq``; ``head`` is its last seq.

        A cursor past the head (a restored database, a confused client) would silently drop
        every live message up to it: it is clamped. The replayed rows follow (``replayed``).
        ``change_head``: the conversation's last change as the replay read it, when the
        client gave a change cursor (the replay brings it every change up to there);
        without one the conversation's changes start at the first live one, as before.
        """
        after = min(after_seq, head)
        self.held.pop(conversation_id, None)
        self.cursors[conversation_id] = after
        if change_head is None:
            self.change_floors.pop(conversation_id, None)
        else:
            self.change_floors[conversation_id] = change_head
        if too_far:
            self.cursors[conversation_id] = head
            return [TooFar(conversation_id, after, head)]
        return []

    def mark_synced(self) -> list[tuple[int, int, Any]]:
        """The client's ``sync`` is done: let live events flow; return those that waited.

        The caller ``push``es each in turn, performing each one's actions before the next:
        an action is decided on the cursors as the previous ones left them.
        """
        self.synced = True
        queued, self.presync = self.presync, []
        return queued

    def joined(
        self, conversation_id: int, last_seq: int, last_change_seq: int | None = None
    ) -> list[Action]:
        """The user joined a conversation whose head was ``last_seq`` (and its last change
        ``last_change_seq``) at the join."""
        self.held.pop(conversation_id, None)
        if last_change_seq is not None:
            self.change_floors.setdefault(conversation_id, last_change_seq)
        cursor = self.cursors.setdefault(conversation_id, last_seq)
        # Messages sent between the membership's commit and the subscription were published
        # before the socket listened: read them now rather than wait for a later message.
        return [Fetch(conversation_id, cursor, None)] if self.synced else []

    def unnamed(self, conversation_id: int, head: int, change_head: int) -> None:
        """``sync`` listed a conversation of the user that the client did not name, with
        its heads: the client reads what it holds up to them over REST; later messages and
        changes are new to it."""
        self.cursors.setdefault(conversation_id, head)
        self.change_floors.setdefault(conversation_id, change_head)

    def left(self, conversation_id: int) -> None:
        self.cursors.pop(conversation_id, None)
        self.held.pop(conversation_id, None)
        self.change_floors.pop(conversation_id, None)

    def cursor(self, conversation_id: int) -> int | None:
        return self.cursors.get(conversation_id)
