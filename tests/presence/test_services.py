"""Presence: online while any connection lives, contacts only, debounced, crash expiry."""

import time

import pytest
from channels.db import database_sync_to_async

from conversations.services import conversation_direct_get_or_create, conversation_group_create
from presence import selectors
from presence.services import apresence_refresh, presence_leave, presence_sweep, presence_touch
from profiles.models import Profile
from tests.conftest import accept_all, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True)]


def _pair(make_user):
    ann, bob = make_user(), make_user()
    accept_all(conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)[0])
    return ann, bob


def _presence(events, user_id):
    return [
        e["data"] for e in events if e["type"] == "presence" and e["data"]["user_id"] == user_id
    ]


def _after_grace() -> float:
    from django.conf import settings

    return time.time() + settings.LIMITS["PRESENCE_OFFLINE_GRACE_SECONDS"] + 1


async def test_several_devices_count_once_and_offline_waits_for_the_last(make_user):
    ann, bob = await database_sync_to_async(_pair)(make_user)
    sweep = database_sync_to_async(presence_sweep)
    async with ws_connect(bob, sync={}) as bob_ws:
        async with ws_connect(ann, sync={}) as phone:
            online = await bob_ws.event("presence")
            assert online["data"]["user_id"] == ann.pk and online["data"]["online"] is True
            async with ws_connect(ann, sync={}):
                pass  # a second device comes and goes
            assert ann.pk not in await sweep(now=_after_grace())
            assert _presence(await bob_ws.drain(0.5), ann.pk) == []
            assert (await phone.request("ping"))["ok"]
        assert ann.pk in await sweep(now=_after_grace())
        offline = await bob_ws.event("presence")
        assert offline["data"]["user_id"] == ann.pk and offline["data"]["online"] is False
        assert _presence(await bob_ws.drain(0.5), ann.pk) == []
        assert await sweep(now=_after_grace()) == []  # idempotent: nothing left to announce


async def test_a_reload_within_the_grace_period_is_silent(make_user):
    ann, bob = await database_sync_to_async(_pair)(make_user)
    async with ws_connect(bob, sync={}) as bob_ws:
        async with ws_connect(ann, sync={}):
            await bob_ws.event("presence")
        # The tab reloads: closed, then open again before the grace period ends.
        assert ann.pk not in await database_sync_to_async(presence_sweep)()
        async with ws_connect(ann, sync={}):
            assert ann.pk not in await database_sync_to_async(presence_sweep)()
            assert _presence(await bob_ws.drain(0.5), ann.pk) == []


async def test_presence_goes_to_contacts_only(make_user):
    ann, bob = await database_sync_to_async(_pair)(make_user)
    eve = await database_sync_to_async(make_user)()
    async with ws_connect(bob, sync={}) as bob_ws, ws_connect(eve, sync={}) as eve_ws:
        async with ws_connect(ann, sync={}):
            await bob_ws.event("presence")
        assert _presence(await eve_ws.drain(0.5), ann.pk) == []


async def test_presence_query_answers_for_visible_users_only(make_user):
    ann, bob = await database_sync_to_async(_pair)(make_user)
    eve = await database_sync_to_async(make_user)()
    async with ws_connect(bob, sync={}) as bob_ws, ws_connect(ann, sync={}):
        reply = await bob_ws.request("presence.query", {"user_ids": [ann.pk, eve.pk, bob.pk]})
        rows = {r["user_id"]: r for r in reply["data"]["presence"]}
        assert set(rows) == {ann.pk, bob.pk}  # eve shares no conversation with bob: left out
        assert rows[ann.pk]["online"] is True and rows[ann.pk]["last_seen"]
        bad = await bob_ws.request("presence.query", {"user_ids": "all"})
        assert bad["error"]["code"] == "invalid"
        bad = await bob_ws.request("presence.query", {"user_ids": list(range(1, 500))})
        assert bad["error"]["code"] == "invalid"


def test_presence_rest_endpoint(make_user):
    from tests.conftest import api_as

    ann, bob = _pair(make_user)
    eve = make_user()
    presence_touch(user_id=ann.pk, conn_id="rest-test")
    response = api_as(bob).get(f"/api/presence?user_ids={ann.pk},{eve.pk}")
    assert response.status_code == 200
    assert [(r["user_id"], r["online"]) for r in response.json()] == [(ann.pk, True)]
    assert api_as(bob).get("/api/presence?user_ids=x").json()["code"] == "invalid"


def test_a_connection_without_heartbeat_expires(make_user, settings):
    """What a SIGKILLed server leaves behind: connections nobody refreshes or closes."""
    ann, bob = _pair(make_user)
    t0 = time.time()
    assert presence_touch(user_id=ann.pk, conn_id="dead-server-conn", now=t0) is True
    ttl = settings.LIMITS["PRESENCE_TTL_SECONDS"]
    assert ann.pk not in presence_sweep(now=t0 + ttl - 1)
    assert selectors.online_ids(user_ids=[ann.pk]) == {ann.pk}
    assert ann.pk in presence_sweep(now=t0 + ttl + 1)
    assert selectors.online_ids(user_ids=[ann.pk]) == set()


def test_a_heartbeat_keeps_a_connection_alive(make_user, settings):
    ann, _ = _pair(make_user)
    ttl = settings.LIMITS["PRESENCE_TTL_SECONDS"]
    t0 = time.time()
    presence_touch(user_id=ann.pk, conn_id="c1", now=t0)
    assert presence_touch(user_id=ann.pk, conn_id="c1", now=t0 + ttl - 1) is False
    assert ann.pk not in presence_sweep(now=t0 + ttl + 1)
    assert ann.pk in presence_sweep(now=t0 + 2 * ttl)


def test_devices_count_once_at_the_service_level(make_user, settings):
    ann, _ = _pair(make_user)
    grace = settings.LIMITS["PRESENCE_OFFLINE_GRACE_SECONDS"]
    t0 = time.time()
    assert presence_touch(user_id=ann.pk, conn_id="phone", now=t0) is True
    assert presence_touch(user_id=ann.pk, conn_id="laptop", now=t0) is False
    assert presence_leave(user_id=ann.pk, conn_id="phone", now=t0 + 1) == 1
    assert ann.pk not in presence_sweep(now=t0 + 1 + grace + 1)
    assert presence_leave(user_id=ann.pk, conn_id="laptop", now=t0 + 2) == 0
    assert ann.pk not in presence_sweep(now=t0 + 2 + grace - 1)  # still in the grace period
    assert ann.pk in presence_sweep(now=t0 + 2 + grace + 1)


def test_last_seen_writes_are_throttled(make_user, settings):
    ann, _ = _pair(make_user)
    t0 = time.time() - 100
    presence_touch(user_id=ann.pk, conn_id="c1", now=t0)
    first = Profile.objects.get(user=ann).last_seen
    assert first is not None and abs(first.timestamp() - t0) < 0.01
    presence_touch(user_id=ann.pk, conn_id="c1", now=t0 + 10)  # within the write interval
    assert Profile.objects.get(user=ann).last_seen == first
    presence_leave(user_id=ann.pk, conn_id="c1", now=t0 + 20)
    grace = settings.LIMITS["PRESENCE_OFFLINE_GRACE_SECONDS"]
    assert ann.pk in presence_sweep(now=t0 + 20 + grace + 1)
    # Going offline stores the time of the last activity (the close), not the sweep's.
    assert abs(Profile.objects.get(user=ann).last_seen.timestamp() - (t0 + 20)) < 0.01


def test_big_groups_do_not_make_presence_contacts(make_user, settings):
    settings.LIMITS = {**settings.LIMITS, "PRESENCE_PUSH_MAX_MEMBERS": 3}
    owner, *others = [make_user() for _ in range(4)]
    accept_all(
        conversation_group_create(user_id=owner.pk, title="big", member_ids=[u.pk for u in others])
    )
    assert selectors.contact_ids(user_id=owner.pk) == []
    conversation_group_create(user_id=owner.pk, title="small", member_ids=[others[0].pk])
    assert selectors.contact_ids(user_id=owner.pk) == [others[0].pk]
    # Asking is still allowed for members of the big group.
    assert selectors.visible_user_ids(user_id=owner.pk, user_ids=[others[2].pk]) == {others[2].pk}


async def test_a_refresh_round_keeps_many_connections_alive_in_one_call(make_user, settings):
    """A process' refresh (refresh.lua): every socket's expiry moves, a user Redis lost is
    announced online again, and due last_seen writes are stored."""
    ann, bob = await database_sync_to_async(_pair)(make_user)
    cat = await database_sync_to_async(make_user)()
    ttl = settings.LIMITS["PRESENCE_TTL_SECONDS"]
    t0 = time.time()
    await database_sync_to_async(presence_touch)(user_id=ann.pk, conn_id="a1", now=t0)
    await database_sync_to_async(presence_touch)(user_id=bob.pk, conn_id="b1", now=t0)
    # cat was never touched (as if Redis lost her): the refresh brings her back online.
    await apresence_refresh(
        conns=[(ann.pk, "a1"), (bob.pk, "b1"), (cat.pk, "c1")], now=t0 + ttl - 1
    )
    gone = await database_sync_to_async(presence_sweep)(now=t0 + ttl + 1)
    assert ann.pk not in gone and bob.pk not in gone and cat.pk not in gone
    online = await database_sync_to_async(selectors.online_ids)(user_ids=[ann.pk, bob.pk, cat.pk])
    assert online == {ann.pk, bob.pk, cat.pk}
    seen = await database_sync_to_async(
        lambda: dict(Profile.objects.filter(user_id=cat.pk).values_list("user_id", "last_seen"))
    )()
    assert abs(seen[cat.pk].timestamp() - (t0 + ttl - 1)) < 0.01  # new: written at once
    gone = await database_sync_to_async(presence_sweep)(now=t0 + 2 * ttl + 1)
    assert {ann.pk, cat.pk} <= set(gone)  # no refresh since: expired


async def test_last_seen_from_the_loop_only_moves_forward_and_creates_the_profile(make_user):
    from presence.services import alast_seen_write

    ann = await database_sync_to_async(make_user)()
    await database_sync_to_async(Profile.objects.filter(user=ann).delete)()
    t0 = time.time() - 100
    await alast_seen_write(user_id=ann.pk, at=t0)  # no profile yet: created
    await alast_seen_write(user_id=ann.pk, at=t0 - 50)  # older: ignored
    seen = await database_sync_to_async(lambda: Profile.objects.get(user=ann).last_seen)()
    assert abs(seen.timestamp() - t0) < 0.01
    await alast_seen_write(user_id=ann.pk, at=t0 + 10)
    seen = await database_sync_to_async(lambda: Profile.objects.get(user=ann).last_seen)()
    assert abs(seen.timestamp() - (t0 + 10)) < 0.01


async def test_last_seen_writes_of_sockets_opening_together_are_one_statement(
    make_user, loop_statements
):
    """40 sockets opening at once: their writes are batched (one UPDATE for those queued
    behind the first), each caller returns with its own write stored, and only forward."""
    import asyncio

    from presence.services import alast_seen_write

    users = [await database_sync_to_async(make_user)() for _ in range(40)]
    t0 = time.time() - 100
    import presence.services as services

    statements = loop_statements(services)
    await asyncio.gather(*(alast_seen_write(user_id=u.pk, at=t0 + i) for i, u in enumerate(users)))
    await alast_seen_write(user_id=users[0].pk, at=t0 - 50)  # older: ignored
    assert len(statements) <= 3, statements  # the first alone, the rest together, the old one
    seen = await database_sync_to_async(
        lambda: dict(Profile.objects.filter(user__in=users).values_list("user_id", "last_seen"))
    )()
    assert all(abs(seen[u.pk].timestamp() - (t0 + i)) < 0.01 for i, u in enumerate(users))
