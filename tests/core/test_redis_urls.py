"""REDIS_URL / CACHE_URL syntax (core/redis_urls.py) and the key-to-server rule (core/redis.py)."""

import binascii

import pytest

from core import redis_urls
from core.redis import key, shard_index, subsystem
from core.redis_urls import Server, parse


def test_one_url_is_one_direct_server():
    assert parse("redis://127.0.0.1:6379/3") == [Server(url="redis://127.0.0.1:6379/3", db=3)]


def test_comma_separated_urls_are_shards_in_order():
    shards = parse("redis://a:1/0, redis://b:2/4,rediss://c:3")
    assert [(s.url, s.db) for s in shards] == [
        ("redis://a:1/0", 0), ("redis://b:2/4", 4), ("rediss://c:3", 0),
    ]  # fmt: skip


def test_a_sentinel_url_lists_its_sentinels_master_and_db():
    (server,) = parse("sentinel://:s3cret@s1:26379,s2:26380,10.0.0.3:26381/bus1/2")
    assert server.is_sentinel
    assert server.sentinels == (("s1", 26379), ("s2", 26380), ("10.0.0.3", 26381))
    assert (server.master_name, server.db, server.password) == ("bus1", 2, "s3cret")
    assert parse(server.text()) == [server]


def test_several_sentinel_masters_and_direct_servers_mix():
    shards = parse("sentinel://s1:1,s2:2/bus1/0,sentinel://s1:1,s2:2/bus2/0,redis://c:3/0")
    assert [(s.master_name, s.url) for s in shards] == [
        ("bus1", ""),
        ("bus2", ""),
        ("", "redis://c:3/0"),
    ]


@pytest.mark.parametrize(
    "value, says",
    [
        ("", "is empty"),
        ("http://a:1/0", "is not a redis://"),
        ("redis://a:1/x", "valid database number"),
        ("sentinel://s1:1,s2:2", "needs a master name"),
        ("sentinel://s1,s2:2/m/0", "is not host:port"),
        ("sentinel://s1:1/m/zero", "valid database number"),
    ],
)
def test_a_malformed_value_is_refused_with_its_name(value, says):
    with pytest.raises(ValueError, match=says) as raised:
        parse(value, name="CACHE_URL")
    assert "CACHE_URL" in str(raised.value) or "empty" in str(raised.value)


def test_channel_layer_and_celery_forms():
    (direct,) = parse("redis://a:1/0")
    assert redis_urls.channel_layer_host(direct, max_connections=4) == {
        "address": "redis://a:1/0", "max_connections": 4,
    }  # fmt: skip
    (sentinel,) = parse("sentinel://:pw@s1:1,s2:2/bus1/3")
    assert redis_urls.channel_layer_host(sentinel) == {
        "master_name": "bus1", "sentinels": [["s1", 1], ["s2", 2]], "db": 3, "password": "pw",
    }  # fmt: skip
    assert redis_urls.celery_broker(sentinel) == (
        "sentinel://:pw@s1:1/3;sentinel://:pw@s2:2/3", {"master_name": "bus1"},
    )  # fmt: skip
    assert redis_urls.celery_broker(direct) == ("redis://a:1/0", {})


def test_a_key_lives_on_the_shard_of_its_subsystem():
    assert subsystem(key("presence", "conns", 7)) == "presence"
    for name in (key("mm"), key("mm", "t", 5), key("mm", "trend", "20261203")):
        assert shard_index(name, 3) == (binascii.crc32(b"mm") & 0xFFF) * 3 // 4096
    assert shard_index(key("rl", "x"), 1) == 0
    with pytest.raises(ValueError, match="not a bus key"):
        shard_index("elsewhere:mm:1", 2)


def test_without_a_key_the_bus_is_refused_once_it_has_several_servers(settings, monkeypatch):
    import core.redis as sb_redis

    settings.REDIS_URL = "redis://127.0.0.1:6379/14,redis://127.0.0.1:6379/15"
    monkeypatch.setattr(sb_redis, "_sync_client", None)
    try:
        clients = sb_redis.buses()
        assert len(clients) == 2
        with pytest.raises(ValueError, match="say which key"):
            sb_redis.bus()
        name = key("mm", "x")
        assert sb_redis.bus(name) is clients[shard_index(name, 2)]
        from pathlib import Path

        from core.scripts import Script

        script = Script(Path(__file__).parents[2] / "core" / "ratelimit.lua")
        with pytest.raises(ValueError, match="of one subsystem"):
            script.run(keys=[key("rl", "a"), key("mm", "b")], args=[1000])
    finally:
        for client in sb_redis.buses():
            client.close()
        monkeypatch.setattr(sb_redis, "_sync_client", None)


def test_a_script_without_keys_must_say_where_it_runs():
    from pathlib import Path

    from core.scripts import Script

    script = Script(Path(__file__).parents[2] / "core" / "ratelimit.lua")
    with pytest.raises(ValueError, match="needs on="):
        script.run(args=[1])
