"""``conversations.writer``: one transaction per batch, gap-free seqs, every outcome right."""

import asyncio

import psycopg
import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

from conversations import writer
from conversations.models import Conversation, Message
from conversations.services import (
    conversation_direct_get_or_create,
    conversation_group_create,
    membership_decline,
)
from conversations.writer import SendRequest, amessage_send, amessages_store, messages_store
from core.db import LoopConnection
from core.errors import Blocked, Conflict, Declined, Forbidden, NotAccepted, NotFound, RequestLimit
from core.events import conversation_group
from relations.models import Block
from tests.conftest import accept_all

pytestmark = pytest.mark.django_db(transaction=True)


def _world(make_user):
    ann, bob, cat, eve = make_user(), make_user(), make_user(), make_user()
    group = conversation_group_create(user_id=ann.pk, title="g", member_ids=[bob.pk, cat.pk])
    direct, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    blocked, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=cat.pk)
    for conversation in (group, direct, blocked):
        accept_all(conversation)
    Block.objects.create(blocker=cat, blocked=ann)
    return ann, bob, cat, eve, group.pk, direct.pk, blocked.pk


def _store_on_the_loop(requests):
    async def store():
        conn = LoopConnection(autocommit=True, generic_plans=True)  # as the writer
        try:
            return await amessages_store(requests, conn)
        finally:
            conn.discard()

    return async_to_sync(store)()


@pytest.mark.parametrize("store", [messages_store, _store_on_the_loop], ids=["orm", "loop"])
def test_a_batch_gets_gap_free_seqs_and_each_request_its_outcome(make_user, store):
    ann, bob, cat, eve, gid, did, xid = _world(make_user)
    Message.objects.create(conversation_id=did, seq=1, sender_id=bob.pk, body="old", client_id="o")
    Conversation.objects.filter(pk=did).update(last_seq=1)
    requests = [
        SendRequest(ann.pk, gid, "g1", "a1"),
        SendRequest(bob.pk, did, "d2", "b1"),
        SendRequest(cat.pk, gid, "g2", "c1"),
        SendRequest(ann.pk, gid, "g1 again", "a1"),  # the same send twice in one batch
        SendRequest(bob.pk, did, "retry", "o"),  # a retry of a stored send
        SendRequest(bob.pk, gid, "elsewhere", "o"),  # its client_id, another conversation
        SendRequest(eve.pk, gid, "outsider", "e1"),
        SendRequest(ann.pk, xid, "blocked", "a2"),
        SendRequest(ann.pk, 999_999, "nowhere", "a3"),
        SendRequest(bob.pk, gid, "g3", "b2"),
    ]
    out = store(requests)
    seqs = [(o.message.conversation_id, o.message.seq) if o.message else None for o in out]
    assert seqs[:3] == [(gid, 1), (did, 2), (gid, 2)]
    assert out[3].message.pk == out[0].message.pk and not out[3].created
    assert out[4].message.body == "old" and not out[4].created
    stored_old = Message.objects.get(sender_id=bob.pk, client_id="o")
    assert out[4].message.created_at == stored_old.created_at  # read back in the same zone
    assert isinstance(out[5].error, Conflict)
    assert isinstance(out[6].error, Forbidden)
    assert isinstance(out[7].error, Blocked)
    assert isinstance(out[8].error, NotFound)
    assert seqs[9] == (gid, 3)
    assert [o.created for o in out] == [True, True, True, False, False, False, False, False,
                                        False, True]  # fmt: skip
    stored = dict(Conversation.objects.filter(pk__in=[gid, did, xid]).values_list("pk", "last_seq"))
    assert stored == {gid: 3, did: 2, xid: 0}  # refused sends took no seq
    assert list(
        Message.objects.filter(conversation_id=gid).order_by("seq").values_list("seq", flat=True)
    ) == [1, 2, 3]


async def test_concurrent_sends_share_transactions_and_seqs_stay_gap_free(make_user, monkeypatch):
    ann, bob, _cat, _eve, gid, did, _xid = await database_sync_to_async(_world)(make_user)
    batches = []
    store = writer.amessages_store

    async def counted(requests, conn):
        batches.append(len(requests))
        return await store(requests, conn)

    monkeypatch.setattr(writer, "amessages_store", counted)
    results = await asyncio.gather(
        *(
            amessage_send(SendRequest(ann.pk if i % 2 else bob.pk, gid if i % 3 else did,
                                      f"m{i}", f"k{i}"))
            for i in range(60)
        )
    )  # fmt: skip
    assert sum(batches) == 60 and len(batches) < 60  # grouped, nothing stored twice
    by_conv: dict[int, list[int]] = {}
    for message, created in results:
        assert created
        by_conv.setdefault(message.conversation_id, []).append(message.seq)
    for seqs in by_conv.values():
        assert sorted(seqs) == list(range(1, len(seqs) + 1))


async def test_the_next_batch_is_stored_while_the_last_is_published_and_order_holds(
    make_user, monkeypatch
):
    """The writer does not wait for a batch's publish: the next batch is stored meanwhile
    (here every publish is held 0.2 s after it has gone out), and the events still reach the
    conversation's group in seq order."""
    ann, bob, _cat, _eve, gid, _did, _xid = await database_sync_to_async(_world)(make_user)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(conversation_group(gid), channel)
    publishing = 0  # publishes gone out and not yet finished
    stored_while_publishing = []
    store, publish = writer.amessages_store, writer.asend_events

    async def counted(requests, conn):
        stored_while_publishing.append(publishing)
        return await store(requests, conn)

    async def held(*, items):
        nonlocal publishing
        publishing += 1
        try:
            await publish(items=items)
            await asyncio.sleep(0.2)
        finally:
            publishing -= 1

    monkeypatch.setattr(writer, "amessages_store", counted)
    monkeypatch.setattr(writer, "asend_events", held)
    try:
        sends = []
        for i in range(40):  # in waves, so that there are several batches
            sends.append(asyncio.ensure_future(
                amessage_send(SendRequest(ann.pk if i % 2 else bob.pk, gid, f"m{i}", f"w{i}"))
            ))  # fmt: skip
            if i % 8 == 7:
                await asyncio.sleep(0.02)
        results = await asyncio.wait_for(asyncio.gather(*sends), 10)
        assert all(created for _, created in results)
        seqs = [(await asyncio.wait_for(layer.receive(channel), 5))["seq"] for _ in range(40)]
    finally:
        await layer.group_discard(conversation_group(gid), channel)
    assert len(stored_while_publishing) > 1
    assert max(stored_while_publishing) > 0  # a batch was stored while one was on its way
    assert seqs == list(range(1, 41))


async def test_a_refused_send_raises_its_error_and_the_others_are_stored(make_user):
    ann, _bob, _cat, eve, gid, _did, _xid = await database_sync_to_async(_world)(make_user)
    ok, refused = await asyncio.gather(
        amessage_send(SendRequest(ann.pk, gid, "fine", "f1")),
        amessage_send(SendRequest(eve.pk, gid, "no", "f2")),
        return_exceptions=True,
    )
    assert ok[0].seq == 1 and ok[1] is True
    assert isinstance(refused, Forbidden)


async def test_a_retry_stored_meanwhile_by_another_process_leaves_no_gap(make_user):
    """The batch statement meets a concurrent insert of the same send: it fails, nothing of it
    stays, and the batch tried again answers with the stored message (migration 0002)."""
    ann, _bob, _cat, _eve, gid, _did, _xid = await database_sync_to_async(_world)(make_user)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    other = await psycopg.AsyncConnection.connect(**params)  # "another process"
    conn = LoopConnection(autocommit=True, generic_plans=True)  # as the writer
    try:
        await other.execute(
            "UPDATE conversations_conversation SET last_seq = last_seq + 1 WHERE id = %s", [gid]
        )
        await other.execute(
            "INSERT INTO conversations_message (conversation_id, seq, sender_id, body, client_id,"
            " created_at) VALUES (%s, 1, %s, 'first', 'race', now())",
            [gid, ann.pk],
        )
        # Our batch starts now: it cannot see that row yet, and waits for the row lock.
        store = asyncio.create_task(
            amessages_store([SendRequest(ann.pk, gid, "again", "race")], conn)
        )
        await asyncio.sleep(0.3)
        assert not store.done()
        await other.commit()
        (out,) = await asyncio.wait_for(store, 10)
    finally:
        await other.close()
        conn.discard()
    assert not out.created and out.message.body == "first" and out.message.seq == 1
    last_seq = await database_sync_to_async(
        Conversation.objects.filter(pk=gid).values_list("last_seq", flat=True).get
    )()
    assert last_seq == 1  # the failed attempt's seq was rolled back: no gap


@pytest.mark.parametrize("store", [messages_store, _store_on_the_loop], ids=["orm", "loop"])
def test_consent_refusals_in_one_batch(make_user, store, settings):
    """A pending member cannot send; a request holds REQUEST_MESSAGES_MAX messages (counted
    inside the batch too); a declined requester cannot send. Each with its code."""
    settings.LIMITS = {**settings.LIMITS, "REQUEST_MESSAGES_MAX": 2}
    ann, bob, cat, eve = make_user(), make_user(), make_user(), make_user()
    request, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    declined, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=cat.pk)
    membership_decline(user_id=cat.pk, conversation_id=declined.pk)
    group = conversation_group_create(user_id=ann.pk, title="g", member_ids=[eve.pk])
    out = store(
        [
            SendRequest(ann.pk, request.pk, "one", "r1"),
            SendRequest(bob.pk, request.pk, "not yet", "b1"),
            SendRequest(ann.pk, request.pk, "two", "r2"),
            SendRequest(ann.pk, request.pk, "three", "r3"),
            SendRequest(ann.pk, declined.pk, "still there?", "d1"),
            SendRequest(eve.pk, group.pk, "invited only", "e1"),
            SendRequest(ann.pk, group.pk, "the owner", "g1"),
        ]
    )
    assert [o.message.seq if o.message else None for o in out] == [1, None, 2, None, None,
                                                                   None, 1]  # fmt: skip
    assert isinstance(out[1].error, NotAccepted)
    assert isinstance(out[3].error, RequestLimit) and out[3].error.extra == {"limit": 2}
    assert isinstance(out[4].error, Declined)
    assert isinstance(out[5].error, NotAccepted)
    # Accepted, the request is an ordinary conversation: no limit, both send.
    accept_all(request)
    more = store([SendRequest(ann.pk, request.pk, "three", "r3"),
                  SendRequest(bob.pk, request.pk, "hi", "b1")])  # fmt: skip
    assert [o.message.seq for o in more] == [3, 4]


async def test_the_writers_connection_keeps_one_generic_plan_that_scans_no_table(make_user):
    """PostgreSQL planned the batch statement again at every execution (custom plans: more
    time than running it); the writer's connection keeps its generic plan, and that plan
    reads every table through an index even while the tables are small."""
    ann, bob, _cat, _eve, gid, did, _xid = await database_sync_to_async(_world)(make_user)
    conn = writer._Writer().conn
    assert conn is not None
    try:
        for i in range(8):
            sender = ann if i % 2 else bob
            cid = gid if i % 3 else did
            (out,) = await amessages_store([SendRequest(sender.pk, cid, f"m{i}", f"c{i}")], conn)
            assert out.created
        pg = await conn.get()
        cur = await pg.execute(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
        )
        batch = [r for r in await cur.fetchall() if "WITH req AS" in r[0]]
        assert len(batch) == 1 and batch[0][1] >= 8 and batch[0][2] == 0, batch
        plan = await pg.execute(
            "EXPLAIN " + writer._batch_sql(),
            writer._batch_params([SendRequest(ann.pk, gid, "x", "explained")], [0],
                                 writer.timezone.now()),
        )  # fmt: skip
        text = "\n".join(r[0] for r in await plan.fetchall())
        assert "Seq Scan" not in text, text
    finally:
        conn.discard()
