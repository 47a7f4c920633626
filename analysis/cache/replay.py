"""A key stream replayed against a real Redis holding a given number of entries: the hit ratio
Redis itself counts (keyspace_hits / (hits + misses)), to set beside the exact-LRU curve's.

Redis evicts by sampling a few keys (maxmemory-samples), not by exact LRU, and bounds memory
in bytes, not entries: the replay sizes maxmemory from the memory one entry takes on this
Redis (measured first), so the gap it shows is the eviction's and the sizing's, as a user
would see it. The Redis must be empty (the replay writes and flushes its keys); its
maxmemory and policy are put back afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from loadwise.analysis.cache.advise import CacheAdvisorError
from loadwise.analysis.redact import redact

DEFAULT_VALUE_BYTES = 100  # a trace without sizes: small values, so memory counts entries
BATCH = 500  # scripts per round trip; each runs whole and in order, so the stream stays sequential
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
    except redis.RedisError as exc:
        raise CacheAdvisorError(f"Redis at {redact(url)}: {str(exc).splitlines()[0]}") from None


def _values(trace: pd.DataFrame) -> list[bytes]:
    if "size" in trace.columns and trace["size"].notna().any():
        sizes = trace["size"].fillna(trace["size"].mean()).clip(lower=1).astype(int)
        return [b"x" * int(n) for n in sizes]
    return [b"x" * DEFAULT_VALUE_BYTES] * len(trace)


def _replay(client: object, trace: pd.DataFrame, entries: int, policy: str) -> Replay:
    keys = [f"lw-replay:{k}" for k in trace["key"].astype(str)]
    values = _values(trace)
    client.config_set("maxmemory", "0")
    client.flushdb()
    # What one entry of this trace takes on this Redis (keys, values and Redis's own per-key overhead).
    baseline = int(client.info("memory")["used_memory"])
    sample = dict(zip(keys, values))
    probe = list(sample.items())[: max(entries, 1)]
    pipe = client.pipeline(transaction=False)
    for key, value in probe:
        pipe.set(key, value)
    pipe.execute()
    per_entry = (int(client.info("memory")["used_memory"]) - baseline) / len(probe)
    client.flushdb()
    maxmemory = int(int(client.info("memory")["used_memory"]) + entries * per_entry)
    client.config_set("maxmemory", str(maxmemory))
    client.config_set("maxmemory-policy", policy)
    samples = int(client.config_get("maxmemory-samples").get("maxmemory-samples", 5))
    client.config_resetstat()
    lookup = client.register_script(_LOOKUP)
    for start in range(0, len(keys), BATCH):
        pipe = client.pipeline(transaction=False)
        for key, value in zip(keys[start : start + BATCH], values[start : start + BATCH]):
            lookup(keys=[key], args=[value], client=pipe)
        pipe.execute()
    stats = client.info("stats")
    return Replay(len(keys), entries, maxmemory, per_entry, policy, samples, int(stats["keyspace_hits"]),
                  int(stats["keyspace_misses"]), int(stats.get("evicted_keys", 0)))  # fmt: skip
