"""Real server processes: many seekers at once (nobody is in two matches), and a killed
process' users leave their matches."""

import asyncio
import contextlib
import random
import time
from collections import Counter

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db.models import Q
from rest_framework.authtoken.models import Token

from matching import pool
from matching.models import Match
from profiles.models import Interest, Profile
from tests.conftest import NetClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# 1,000 concurrent seekers are proven at the Redis level (test_concurrency.py); here 400
# sockets over two processes keep `make test` within its time budget.
SEEKERS = 400
INTERESTS = ["chess", "jazz", "go", "tea", "surf", "opera", "rust", "poker", "yoga", "film"]


def _make_seekers(n: int) -> list[tuple[int, str]]:
    """Create ``n`` users with tokens and Zipf-ish interests, in bulk (fast)."""
    rng = random.Random(11)
    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"seeker{i}_{rng.random():.8f}", password="!") for i in range(n)]
    )
    created = Interest.objects.bulk_create([Interest(slug=s, name=s) for s in INTERESTS])
    interests = {i.slug: i for i in created}
    regions = ["europe", "asia", ""]
    profiles = Profile.objects.bulk_create(
        [
            Profile(user=u, display_name=u.username, language="en", region=rng.choice(regions))
            for u in users
        ]
    )
    weights = [1 / (k + 1) for k in range(len(INTERESTS))]
    through = Profile.interests.through
    rows = []
    for profile in profiles:
        for slug in {rng.choices(INTERESTS, weights)[0] for _ in range(rng.randint(1, 3))}:
            rows.append(through(profile_id=profile.pk, interest_id=interests[slug].pk))
    through.objects.bulk_create(rows)
    tokens = Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users])
    return [(t.user_id, t.key) for t in tokens]


async def test_no_double_match_across_two_server_processes(servers):
    a, b = servers(2)
    seekers = await database_sync_to_async(_make_seekers)(SEEKERS)
    clients: dict[int, NetClient] = {}
    gate = asyncio.Semaphore(40)  # connecting is not under test: do not flood the handshakes

    async def connect(i: int, uid: int, token: str) -> None:
        async with gate:
            clients[uid] = await NetClient.open((a if i % 2 else b).ws_url, token)

    try:
        await asyncio.gather(*(connect(i, uid, token) for i, (uid, token) in enumerate(seekers)))
        # Every seeker asks at the same moment, half on each process.
        replies = await asyncio.gather(
            *(c.request("match.enter", timeout=120) for c in clients.values())
        )
        assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:3]

        def matches():
            return list(Match.objects.values_list("pk", "user_a_id", "user_b_id"))

        rows = await database_sync_to_async(matches)()
        in_rows = Counter(u for _, x, y in rows for u in (x, y))
        assert rows and max(in_rows.values()) == 1, "someone is in two matches"
        waiting = await database_sync_to_async(pool.pool_size)()
        assert 2 * len(rows) + waiting == SEEKERS

        # Both members of every match hear of it, on whichever process they are.
        for match_id, x, y in rows:
            for me, partner in ((x, y), (y, x)):
                found = await clients[me].event("match.found", timeout=60)
                assert found["data"]["match_id"] == match_id
                assert found["data"]["partner"]["user_id"] == partner
        extra = await asyncio.gather(*(c.drain(wait=0.5) for c in clients.values()))
        assert not [e for events in extra for e in events if e["type"] == "match.found"]

        def open_matches_per_user():
            return Match.objects.filter(
                Q(user_a_id__in=list(clients)) | Q(user_b_id__in=list(clients)),
                ended_at__isnull=True,
            ).count()

        assert await database_sync_to_async(open_matches_per_user)() == len(rows)
    finally:
        await asyncio.gather(*(c.close() for c in clients.values()), return_exceptions=True)


async def test_a_killed_process_ends_its_users_matches_and_a_dead_ticket_s_match(
    servers, make_user, settings
):
    """SIGKILL runs no disconnect hook: the sweep still ends the match of a user whose only
    socket was there (partner_left), and, within the ticket's TTL, a seeker can be matched
    with a waiting user whose socket died with it: that match ends the same way."""
    from matching import services

    a, b = servers(2, LIMIT_MEET_PARTNER_GRACE_SECONDS="1")

    def people():
        made = {}
        for name, interest in (("bob", "chess"), ("ann", "chess"), ("carl", "opera")):
            made[name] = make_user(name, interests=[interest], region="europe")
        made["dan"] = make_user("dan", interests=["opera"], region="europe")
        return {name: (u, Token.objects.create(user=u).key) for name, u in made.items()}

    users = await database_sync_to_async(people)()
    bob = await NetClient.open(a.ws_url, users["bob"][1])
    carl = await NetClient.open(a.ws_url, users["carl"][1])
    ann = await NetClient.open(b.ws_url, users["ann"][1])
    dan = await NetClient.open(b.ws_url, users["dan"][1])
    try:
        assert (await bob.request("match.enter"))["data"]["status"] == "waiting"
        first = (await ann.request("match.enter"))["data"]
        assert first["status"] == "matched"
        assert (await carl.request("match.enter"))["data"]["status"] == "waiting"
        a.kill()  # Bob and Carl: gone without a goodbye; Carl's ticket stays in the pool
        second = (await dan.request("match.enter"))["data"]
        assert second["status"] == "matched"  # with Carl, whose socket is gone
        deadline = time.monotonic() + 20
        ended = {}
        while len(ended) < 2 and time.monotonic() < deadline:
            await database_sync_to_async(services.pool_sweep)()
            for name, ws in (("ann", ann), ("dan", dan)):
                if name not in ended:
                    with contextlib.suppress(TimeoutError):
                        ended[name] = (await ws.event("match.ended", timeout=0.2))["data"]
        assert ended["ann"] == {
            "match_id": first["match_id"],
            "reason": "partner_left",
            "by_user_id": users["bob"][0].pk,
        }
        assert ended["dan"] == {
            "match_id": second["match_id"],
            "reason": "partner_left",
            "by_user_id": users["carl"][0].pk,
        }
        rows = await database_sync_to_async(
            lambda: sorted(Match.objects.values_list("end_reason", flat=True))
        )()
        assert rows == ["partner_left", "partner_left"]
    finally:
        for ws in (ann, dan):
            await ws.close()
