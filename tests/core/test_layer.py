"""core.layer: a group event is decoded once per process and its frame encoded once."""

from channels.layers import get_channel_layer

from core.layer import ChannelLayer
from realtime.codec import event_text


async def test_consumers_of_a_group_share_one_decoded_event_and_one_frame():
    layer = get_channel_layer()
    assert isinstance(layer, ChannelLayer)
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("layer-test", a)
    await layer.group_add("layer-test", b)
    try:
        event = {"type": "push.event", "event": "test.layer", "data": {"n": 1}}
        await layer.group_send("layer-test", event)
        got_a, got_b = await layer.receive(a), await layer.receive(b)
        assert got_a is got_b and got_a == event
        assert event_text(got_a) == '{"type":"test.layer","data":{"n":1}}'
        assert got_b["_frame"] is event_text(got_a)  # encoded once, by the first consumer

        # The next event, even an equal one, is decoded afresh: nothing stale is reused.
        await layer.group_send("layer-test", event)
        again_a = await layer.receive(a)
        assert again_a is not got_a and again_a == event
    finally:
        await layer.group_discard("layer-test", a)
        await layer.group_discard("layer-test", b)


async def test_a_batch_is_published_in_order_to_each_group():
    layer = get_channel_layer()
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("batch-x", a)
    await layer.group_add("batch-y", b)
    try:
        batch = [
            (group, {"type": "push.event", "event": "t", "data": {"n": n}})
            for n in range(20)
            for group in ("batch-x", "batch-y")
        ]
        await layer.group_send_many(batch)
        got_a = [(await layer.receive(a))["data"]["n"] for _ in range(20)]
        got_b = [(await layer.receive(b))["data"]["n"] for _ in range(20)]
        assert got_a == got_b == list(range(20))
    finally:
        await layer.group_discard("batch-x", a)
        await layer.group_discard("batch-y", b)


async def test_a_consumers_channel_is_local_and_subscribes_nothing_in_redis():
    """One SUBSCRIBE per group per process, none per consumer (the opening profile)."""
    from core.redis import abus

    layer = get_channel_layer()
    mine = await layer.new_channel()
    remote = await layer.new_channel("readyz.")  # a channel others may send to by name
    await layer.group_add("local-test", mine)
    try:
        subscribed = {
            c if isinstance(c, str) else c.decode() for c in await abus().pubsub_channels()
        }
        assert mine not in subscribed
        assert remote in subscribed
        assert any(c.endswith("__group__local-test") for c in subscribed)
        await layer.group_send("local-test", {"type": "push.event", "event": "t", "data": {}})
        assert (await layer.receive(mine))["event"] == "t"
    finally:
        await layer.group_discard("local-test", mine)


async def test_groups_added_together_are_one_subscription_each_and_deliver():
    from core.redis import abus

    layer = get_channel_layer()
    a, b = await layer.new_channel(), await layer.new_channel()
    groups = [f"many-{n}" for n in range(5)]
    await layer.group_add("many-0", b)  # already subscribed by this process
    await layer.group_add_many(groups, a)
    try:
        subscribed = {
            c if isinstance(c, str) else c.decode() for c in await abus().pubsub_channels()
        }
        assert all(any(c.endswith(f"__group__{g}") for c in subscribed) for g in groups)
        for g in groups:
            await layer.group_send(g, {"type": "push.event", "event": g, "data": {}})
        assert [(await layer.receive(a))["event"] for _ in groups] == groups
        assert (await layer.receive(b))["event"] == "many-0"
    finally:
        for g in groups:
            await layer.group_discard(g, a)
        await layer.group_discard("many-0", b)


def _group_subscribed(subscribed: set[str], group: str) -> bool:
    return any(c.endswith(f"__group__{group}") for c in subscribed)


async def _subscribed_now() -> set[str]:
    from core.redis import abus

    return {c if isinstance(c, str) else c.decode() for c in await abus().pubsub_channels()}


async def test_sockets_opening_together_share_their_subscribe_commands():
    """300 sockets opening at once, each with its own groups: a few SUBSCRIBEs, not 300
    queued one by one behind the shard's lock (the reconnect storm's profile)."""
    import asyncio

    layer = get_channel_layer()
    channels = [await layer.new_channel() for _ in range(300)]
    shard = layer._get_layer()._get_shard(layer._get_layer()._get_group_channel_name("x"))
    shard._ensure_redis()
    real_subscribe, calls = shard._pubsub.subscribe, []

    async def counted(*names):  # the real command, counted
        calls.append(len(names))
        return await real_subscribe(*names)

    shard._pubsub.subscribe = counted
    try:
        await asyncio.gather(
            *(layer.group_add_many([f"open-{i}", f"open-{i}-b"], c) for i, c in enumerate(channels))
        )
        assert sum(calls) == 600 and len(calls) <= 10, calls
        subscribed = await _subscribed_now()
        assert all(_group_subscribed(subscribed, f"open-{i}") for i in range(300))
        await layer.group_send("open-299-b", {"type": "push.event", "event": "e", "data": {}})
        assert (await layer.receive(channels[299]))["event"] == "e"
    finally:
        shard._pubsub.subscribe = real_subscribe
        for i, c in enumerate(channels):
            await layer.group_discard(f"open-{i}", c)
            await layer.group_discard(f"open-{i}-b", c)


async def test_a_group_without_local_sockets_lingers_subscribed_then_is_unsubscribed(settings):
    import asyncio

    settings.LIMITS = {**settings.LIMITS, "LAYER_UNSUBSCRIBE_LINGER_SECONDS": 0.5}
    layer = get_channel_layer()
    first, again = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("linger", first)
    await layer.group_discard("linger", first)
    assert _group_subscribed(await _subscribed_now(), "linger")  # still, for the linger
    # An event now reaches no one (and is not queued for anyone).
    await layer.group_send("linger", {"type": "push.event", "event": "lost", "data": {}})
    await asyncio.sleep(0.1)  # read (and dropped) before the next socket joins
    # A socket joining within the linger finds the subscription and hears the group.
    await layer.group_add("linger", again)
    await layer.group_send("linger", {"type": "push.event", "event": "heard", "data": {}})
    assert (await layer.receive(again))["event"] == "heard"
    await asyncio.sleep(0.8)
    assert _group_subscribed(await _subscribed_now(), "linger")  # heard: never unsubscribed
    await layer.group_discard("linger", again)
    await asyncio.sleep(0.8)
    assert not _group_subscribed(await _subscribed_now(), "linger")
    # And joining afterwards subscribes it again (redis-py does not wait for SUBSCRIBE's
    # confirmation: another connection may ask a moment too early).
    await layer.group_add("linger", again)
    for _ in range(50):
        if _group_subscribed(await _subscribed_now(), "linger"):
            break
        await asyncio.sleep(0.02)
    assert _group_subscribed(await _subscribed_now(), "linger")
    await layer.group_send("linger", {"type": "push.event", "event": "back", "data": {}})
    assert (await layer.receive(again))["event"] == "back"
    await layer.group_discard("linger", again)


async def test_publishes_made_together_share_a_pipeline_and_keep_their_order():
    """200 publishes from 200 coroutines at once (typing, presence, the writer): the first
    at once, then a few pipelines, not a round trip each queued behind the shard's lock;
    delivered in the order they were made."""
    import asyncio

    layer = get_channel_layer()
    mine = await layer.new_channel()
    await layer.group_add("pub-order", mine)
    loop_layer = layer._get_layer()
    shard = loop_layer._get_shard(loop_layer._get_group_channel_name("pub-order"))
    shard._ensure_redis()
    real_pipeline, pipelines = shard._redis.pipeline, []

    def counted(*args, **kwargs):  # the real pipeline, counted
        pipelines.append(1)
        return real_pipeline(*args, **kwargs)

    real_publish, alone = shard._redis.publish, []

    async def counted_publish(*args, **kwargs):  # a round trip of its own, counted
        alone.append(1)
        return await real_publish(*args, **kwargs)

    shard._redis.pipeline = counted
    shard._redis.publish = counted_publish
    try:
        await asyncio.gather(
            *(
                layer.group_send(
                    "pub-order", {"type": "push.event", "event": "t", "data": {"n": n}}
                )
                for n in range(200)
            )
        )
        got = [(await layer.receive(mine))["data"]["n"] for _ in range(200)]
        assert got == list(range(200))
        # The first runs its lone publish at once; the others queue behind it in pipelines.
        assert len(alone) == 1 and 1 <= len(pipelines) <= 4, (len(alone), len(pipelines))
    finally:
        shard._redis.pipeline = real_pipeline
        shard._redis.publish = real_publish
        await layer.group_discard("pub-order", mine)
