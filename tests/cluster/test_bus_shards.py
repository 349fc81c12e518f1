"""Two bus shards: real server processes on a bus of two Redis servers (issue 16).

Users whose groups hash to different shards converse across two processes, see each other's
presence and meet in Meet; then each server is searched for what landed on it: the layer's
group channels on the shard channels-redis chose, each subsystem's keys on the shard of the
key-to-server rule (``core.redis``), and both servers hold some: nothing assumes one server.
"""

import pytest
import redis
from channels.db import database_sync_to_async
from channels_redis.utils import _consistent_hash
from django.conf import settings

from conversations.services import conversation_direct_get_or_create
from core.events import conversation_group, user_group
from core.redis import shard_index, subsystem
from tests.cluster.redis_cluster import shards, shards_url
from tests.conftest import NetClient, accept_all, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def two_shards():
    with shards(2) as servers:
        yield servers


def layer_shard(group: str) -> int:
    """The shard channels-redis puts ``group``'s channel on (its prefix as in settings)."""
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    return _consistent_hash(f"{prefix}__group__{group}", 2)


def _people(make_user):
    """Ann and bob, whose user groups are on different shards, in an accepted conversation;
    carl and dan, who share an interest, for Meet."""
    ann = make_user(interests=["chess"], region="europe")
    bob = make_user(interests=["chess"], region="europe")
    while layer_shard(user_group(bob.pk)) == layer_shard(user_group(ann.pk)):
        bob = make_user(interests=["chess"], region="europe")
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    accept_all(conv)
    carl = make_user(interests=["opera"], region="europe")
    dan = make_user(interests=["opera"], region="europe")
    return {
        "ann": (ann.pk, token_for(ann)),
        "bob": (bob.pk, token_for(bob)),
        "carl": (carl.pk, token_for(carl)),
        "dan": (dan.pk, token_for(dan)),
        "cid": conv.pk,
    }


def server_client(server) -> redis.Redis:
    return redis.Redis(port=server.port, decode_responses=True)


def _keys_by_shard(servers) -> list[set[str]]:
    """Every key of this run's prefix on each server."""
    out = []
    for server in servers:
        client = server_client(server)
        out.append(set(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:*", count=1000)))
        client.close()
    return out


async def test_users_on_two_shards_converse_see_presence_and_meet(two_shards, servers, make_user):
    url = shards_url(two_shards)
    a, b = servers(2, REDIS_URL=url, DB_POOL_MAX_SIZE="2")
    people = await database_sync_to_async(_people)(make_user)
    (ann_id, ann_token), (bob_id, bob_token) = people["ann"], people["bob"]
    cid = people["cid"]
    ann = await NetClient.open(a.ws_url, ann_token, sync={})
    bob = await NetClient.open(b.ws_url, bob_token, sync={})
    carl = await NetClient.open(a.ws_url, people["carl"][1])
    dan = await NetClient.open(b.ws_url, people["dan"][1])
    try:
        # Presence: bob came online after ann; she hears it (bob's user group is not on
        # ann's shard: the event goes to her group, on hers).
        seen = await ann.event("presence", timeout=10)
        assert (seen["data"]["user_id"], seen["data"]["online"]) == (bob_id, True)
        reply = await bob.request("presence.query", {"user_ids": [ann_id]}, timeout=10)
        assert reply["data"]["presence"][0]["online"] is True, reply

        # Messages both ways, each pushed live to the other process.
        for i in range(10):
            me, other = (ann, bob) if i % 2 == 0 else (bob, ann)
            data = {"conversation_id": cid, "body": f"m{i}", "client_id": f"m{i}"}
            reply = await me.request("message.send", data, timeout=10)
            assert reply["ok"] and reply["data"]["message"]["seq"] == i + 1, reply
            got = await other.event("message.new", timeout=10)
            assert (got["data"]["seq"], got["data"]["body"]) == (i + 1, f"m{i}")

        # Meet: carl on a, dan on b, matched by the pool's script on its one shard.
        assert (await carl.request("match.enter", timeout=10))["ok"]
        entered = await dan.request("match.enter", timeout=10)
        assert entered["data"]["status"] == "matched", entered
        match_id = entered["data"]["match_id"]
        for me, partner in ((carl, people["dan"][0]), (dan, people["carl"][0])):
            found = await me.event("match.found", timeout=10)
            assert (found["data"]["match_id"], found["data"]["partner"]["user_id"]) == (
                match_id,
                partner,
            )
        said = await carl.request("match.say", {"match_id": match_id, "text": "hi"}, timeout=10)
        assert said["ok"], said
        assert (await dan.event("match.message", timeout=10))["data"]["text"] == "hi"

        # Where everything landed. The layer: each process subscribes to the group channels
        # of its sockets on the shard channels-redis chose for each.
        subscribed = []
        for server in two_shards:
            client = server_client(server)
            subscribed.append(set(client.pubsub_channels(f"{settings.REDIS_KEY_PREFIX}:cl:*")))
            client.close()
        prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
        for group in (user_group(ann_id), user_group(bob_id), conversation_group(cid)):
            name = f"{prefix}__group__{group}"
            assert name in subscribed[layer_shard(group)], (group, subscribed)
            assert name not in subscribed[1 - layer_shard(group)], (group, subscribed)
        assert layer_shard(user_group(ann_id)) != layer_shard(user_group(bob_id))

        # Our own keys: each on the shard of its subsystem, and both shards hold some.
        keys = _keys_by_shard(two_shards)
        assert all(keys), keys
        for index, found in enumerate(keys):
            for name in found:
                if subsystem(name) in ("cl", "celery"):  # the layer's and Celery's own
                    continue
                assert shard_index(name, 2) == index, (name, index)
        present = {subsystem(n) for found in keys for n in found}
        assert {"presence", "mm", "ops"} <= present, present
        assert {shard_index(settings.REDIS_KEY_PREFIX + f":{s}", 2) for s in present} == {0, 1}
    finally:
        for client in (ann, bob, carl, dan):
            await client.close()
