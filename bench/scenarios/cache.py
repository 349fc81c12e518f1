"""Cache: public profile reads under a Zipf workload, with and without the cache (issue #6).

100,000 profiles (5,000 in quick mode; users, profiles and two interests each, by bulk
inserts). Reads pick a profile by Zipf popularity (s = ``ZIPF_S`` over the ranks, ranks
shuffled over the ids) and call what ``GET /api/users/<id>/profile`` calls, in this process:

- **no cache**: the uncached function (``profile_public_get.func``);
- **cache, cold**: ``profile_public_get`` on an empty cache;
- **cache, steady state**: the cache as it is after ``READS_PER_TTL`` reads of the same
  workload within one TTL (1 h: ~280 reads/s sustained): the profiles those reads touched
  are cached first (by the bulk path of the warm-up task), then the measured reads run.

Per mode: hit rate (from the ``switchboard_cache_requests_total`` counter), database
queries (counted by a connection wrapper) per read and per minute, read latency p50/p99.

Targets (steady state against no cache): hit rate >= 95 %, database queries down >= 90 %.
"""

import bisect
import random
import time
from itertools import accumulate
from pathlib import Path

from bench import common

PROFILES = 100_000
ZIPF_S = 1.0
READS_PER_TTL = 1_000_000
FULL = {"reads": 30_000, "profiles": PROFILES, "reads_per_ttl": READS_PER_TTL}
# Quick (the whole quick suite must finish in under 3 minutes): a twentieth of the profiles
# and of the reads per TTL, so the workload has the same shape on a smaller scale.
QUICK = {"reads": 1_000, "profiles": PROFILES // 20, "reads_per_ttl": READS_PER_TTL // 20}
TARGET_HIT_RATE = 0.95
TARGET_QUERY_REDUCTION = 0.90
INTERESTS = [f"topic{i}" for i in range(200)]


def _data_create(profiles: int) -> list[int]:
    from django.contrib.auth import get_user_model

    from profiles.models import Interest, Profile

    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=f"cache{i}", password="!") for i in range(profiles)],
        batch_size=5000,
    )
    profiles = Profile.objects.bulk_create(
        [Profile(user=u, display_name=f"Cache {i}") for i, u in enumerate(users)],
        batch_size=5000,
    )
    interests = Interest.objects.bulk_create([Interest(slug=s, name=s) for s in INTERESTS])
    through = Profile.interests.through
    rng = random.Random(7)
    rows = []
    for p in profiles:
        for interest in rng.sample(interests, 2):
            rows.append(through(profile_id=p.pk, interest_id=interest.pk))
    through.objects.bulk_create(rows, batch_size=10_000)
    return [u.pk for u in users]


class ZipfSampler:
    def __init__(self, ids: list[int], s: float, seed: int):
        self.rng = random.Random(seed)
        self.ids = ids[:]
        self.rng.shuffle(self.ids)  # popularity unrelated to id order
        self.cdf = list(accumulate(1.0 / (k**s) for k in range(1, len(ids) + 1)))

    def sample(self) -> int:
        rank = bisect.bisect_left(self.cdf, self.rng.random() * self.cdf[-1])
        return self.ids[min(rank, len(self.ids) - 1)]


class QueryCounter:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def _cache_results() -> dict[str, float]:
    from core.metrics import CACHE_REQUESTS

    out = {}
    for metric in CACHE_REQUESTS.collect():
        for s in metric.samples:
            if s.name.endswith("_total") and s.labels["function"] == "profile_public_get":
                out[s.labels["result"]] = s.value
    return out


def _cache_clear() -> None:
    from django.conf import settings
    from django.core.cache import cache

    client = cache.client.get_client(write=True)
    names = list(
        client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:*profile:public*", count=5000)
    )
    for i in range(0, len(names), 5000):
        client.delete(*names[i : i + 5000])


def _steady_state_fill(sampler: ZipfSampler, reads_per_ttl: int) -> int:
    """Cache every profile that ``reads_per_ttl`` reads would have touched; return how many."""
    from profiles.models import Profile
    from profiles.selectors import profile_public, profile_public_get

    touched = {sampler.sample() for _ in range(reads_per_ttl)}
    ids = sorted(touched)
    for i in range(0, len(ids), 2000):
        chunk = (
            Profile.objects.filter(user_id__in=ids[i : i + 2000])
            .select_related("user")
            .prefetch_related("interests")
        )
        profile_public_get.warm(
            {profile_public_get.key(user_id=p.user_id): profile_public(profile=p) for p in chunk}
        )
    return len(ids)


def _measure(name: str, read, sampler: ZipfSampler, reads: int) -> dict:
    from django.db import connection

    counter = QueryCounter()
    before = _cache_results()
    latencies = []
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        for _ in range(reads):
            user_id = sampler.sample()
            t0 = time.perf_counter()
            assert read(user_id=user_id) is not None
            latencies.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - started
    after = _cache_results()
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    calls = sum(delta.values())
    lat = common.latency_summary(latencies)
    return {
        "mode": name,
        "reads": reads,
        "seconds": round(elapsed, 2),
        "hit_rate": round((delta.get("hit", 0) + delta.get("stale", 0)) / calls, 4)
        if calls
        else None,
        "queries": counter.count,
        "queries_per_read": round(counter.count / reads, 3),
        "queries_per_minute": round(counter.count / elapsed * 60),
        "p50_ms": lat["p50"],
        "p99_ms": lat["p99"],
    }


def run(*, quick: bool, results_dir: Path) -> dict:
    from profiles.selectors import profile_public_get

    params = QUICK if quick else FULL
    started = time.perf_counter()
    ids = _data_create(params["profiles"])
    create_seconds = round(time.perf_counter() - started, 1)
    uncached = profile_public_get.func
    rows = [_measure("no cache", uncached, ZipfSampler(ids, ZIPF_S, 1), params["reads"])]
    _cache_clear()
    rows.append(
        _measure("cache, cold", profile_public_get, ZipfSampler(ids, ZIPF_S, 1), params["reads"])
    )
    _cache_clear()
    fill_sampler = ZipfSampler(ids, ZIPF_S, 1)  # same popularity order, its own draws
    fill_sampler.rng.seed(2)
    filled = _steady_state_fill(fill_sampler, params["reads_per_ttl"])
    steady = ZipfSampler(ids, ZIPF_S, 1)
    steady.rng.seed(3)
    rows.append(_measure("cache, steady state", profile_public_get, steady, params["reads"]))
    print(
        common.table(
            rows,
            [
                ("mode", "mode", ""),
                ("reads", "reads", ""),
                ("hit_rate", "hit rate", ".1%"),
                ("queries_per_read", "queries/read", ".3f"),
                ("queries_per_minute", "queries/min", ""),
                ("p50_ms", "p50 ms", ".3f"),
                ("p99_ms", "p99 ms", ".3f"),
            ],
        )
    )
    base, best = rows[0], rows[2]
    reduction = 1 - best["queries_per_read"] / base["queries_per_read"]
    result = {
        "scenario": "cache",
        "profiles": params["profiles"],
        "zipf_s": ZIPF_S,
        "reads_per_ttl": params["reads_per_ttl"],
        "profiles_cached_in_steady_state": filled,
        "data_create_seconds": create_seconds,
        "rows": rows,
        "targets": [
            {
                "name": "hit rate (steady state)",
                "target": f">= {TARGET_HIT_RATE:.0%}",
                "measured": best["hit_rate"],
                "met": best["hit_rate"] >= TARGET_HIT_RATE,
            },
            {
                "name": "database queries down",
                "target": f">= {TARGET_QUERY_REDUCTION:.0%}",
                "measured": round(reduction, 4),
                "met": reduction >= TARGET_QUERY_REDUCTION,
            },
        ],
    }
    common.write_json(results_dir / "cache.json", result)
    common.plot(
        results_dir / "cache.png",
        title=f"Public profile reads, Zipf over {params['profiles']:,} profiles",
        xlabel="mode (0 = no cache, 1 = cold, 2 = steady state)",
        panels=[
            {
                "ylabel": "queries per read",
                "series": {"queries": ([0, 1, 2], [r["queries_per_read"] for r in rows])},
            },
            {"ylabel": "p99 ms", "series": {"p99": ([0, 1, 2], [r["p99_ms"] for r in rows])}},
        ],
    )
    return result


if __name__ == "__main__":
    common.scenario_main(run)
