"""A key stream replayed against a real Redis holding a given number of entries: the hit ratio
Redis itself counts (keyspace_hits / (hits + misses)), to set beside the exact-LRU curve's.

Redis evicts by sampling a few keys (maxmemory-samples), not by exact LRU, and bounds memory
in bytes, not entries: the replay sizes maxmemory from the memory one entry takes on this
Redis (measured first) and counts the entries Redis really kept, so two gaps show apart: the
sizing's (entries kept against entries meant) and the eviction's (the hit ratio against the
exact-LRU curve's at the size kept). The Redis must be empty (the replay writes and flushes its keys); its
maxmemory and policy are put back afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from loadwise.analysis.cache.advise import CacheAdvisorError
from loadwise.analysis.redact import redact

DEFAULT_VALUE_BYTES = 100  # a trace without sizes: small values, so memory counts entries
# Commands per round trip. Each script runs whole and in order, so the stream stays sequential;
# a round trip's commands wait in Redis's query buffer, which counts against maxmemory, so few.
BATCH = 50
# One lookup: a hit counts in keyspace_hits; a miss in keyspace_misses, then the entry is stored.
_LOOKUP = "if redis.call('GET', KEYS[1]) then return 1 end redis.call('SET', KEYS[1], ARGV[1]) return 0"


@dataclass
class Replay:
    requests: int
    entries: int  # the cache size replayed, in entries of this trace
    maxmemory: int  # bytes, as set for the replay
    bytes_per_entry: float  # measured on this Redis before the replay
    policy: str
    samples: int  # maxmemory-samples: how many keys Redis compares per eviction
    hits: int
    misses: int
    evicted: int
    held: float  # entries Redis kept, on average over the replay's second half: the size it really had

    @property
    def hit_ratio(self) -> float | None:
        return self.hits / (self.hits + self.misses) if self.hits + self.misses else None


def replay(trace: pd.DataFrame, url: str, entries: int, policy: str = "allkeys-lru") -> Replay:
    """Replay `trace` (timestamp, key[, size], in order) against the Redis at `url` sized for `entries`."""
    import redis

    if entries < 1:
        raise CacheAdvisorError("the cache to replay holds no entry")
    try:
        client = redis.Redis.from_url(url, socket_timeout=30)
        if client.dbsize():
            raise CacheAdvisorError(f"Redis at {redact(url)} holds {client.dbsize()} keys: the replay writes and flushes "
                                    "its own, so give it an empty (throwaway) Redis")  # fmt: skip
        saved = client.config_get("maxmemory*")
        try:
            return _replay(client, trace, entries, policy)
        finally:
            client.flushdb()
            client.config_set("maxmemory", saved.get("maxmemory", "0"))
            client.config_set("maxmemory-policy", saved.get("maxmemory-policy", "noeviction"))
    except redis.exceptions.OutOfMemoryError:
        raise CacheAdvisorError(f"Redis at {redact(url)}: the maxmemory for {entries} entries is below what Redis "
                                "itself takes: too small a cache to replay in bytes") from None
    except redis.RedisError as exc:
        raise CacheAdvisorError(f"Redis at {redact(url)}: {str(exc).splitlines()[0]}") from None


def _values(trace: pd.DataFrame) -> list[bytes]:
    if "size" in trace.columns and trace["size"].notna().any():
        sizes = trace["size"].fillna(trace["size"].mean()).clip(lower=1).astype(int)
        return [b"x" * int(n) for n in sizes]
    return [b"x" * DEFAULT_VALUE_BYTES] * len(trace)


def _fill(client: object, count: int, value: bytes) -> None:
    for start in range(0, count, BATCH):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + BATCH, count)):
            pipe.set(f"lw-fill:{i}", value)
        pipe.execute()


PROBE_ENTRIES = 5_000  # enough entries that one entry's share of Redis's memory is not lost in its jitter


def _bytes_per_entry(client: object, value: bytes) -> float:
    """What one entry of `value`'s size adds to Redis's memory, over PROBE_ENTRIES of them."""
    client.config_set("maxmemory", "0")
    client.flushdb()
    baseline = int(client.info("memory")["used_memory"])
    _fill(client, PROBE_ENTRIES, value)
    per_entry = (int(client.info("memory")["used_memory"]) - baseline) / PROBE_ENTRIES
    client.flushdb()
    return per_entry


def _replay(client: object, trace: pd.DataFrame, entries: int, policy: str) -> Replay:
    keys = [f"lw-replay:{k}" for k in trace["key"].astype(str)]
    values = _values(trace)
    typical = b"x" * max(1, round(sum(map(len, values)) / len(values)))
    lookup = client.register_script(_LOOKUP)
    client.script_load(_LOOKUP)  # loaded before the baseline: its memory is Redis's own, not the cache's
    per_entry = _bytes_per_entry(client, typical)
    # Redis bounds bytes: for a small cache its own memory's jitter is many entries, so the size
    # it really keeps is counted below and the hit ratio judged at that size (verify.cache_checks).
    maxmemory = int(int(client.info("memory")["used_memory"]) + entries * per_entry)
    client.config_set("maxmemory", str(maxmemory))
    client.config_set("maxmemory-policy", policy)
    samples = int(client.config_get("maxmemory-samples").get("maxmemory-samples", 5))
    client.config_resetstat()
    held = []
    for start in range(0, len(keys), BATCH):
        pipe = client.pipeline(transaction=False)
        for key, value in zip(keys[start : start + BATCH], values[start : start + BATCH]):
            lookup(keys=[key], args=[value], client=pipe)
        pipe.dbsize()
        held.append(pipe.execute()[-1])
    stats = client.info("stats")
    steady = held[len(held) // 2 :] or held  # once the cache has filled
    return Replay(len(keys), entries, maxmemory, per_entry, policy, samples, int(stats["keyspace_hits"]),
                  int(stats["keyspace_misses"]), int(stats.get("evicted_keys", 0)), sum(steady) / len(steady))  # fmt: skip
