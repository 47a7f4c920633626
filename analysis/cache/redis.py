"""A live Redis, seen by the cache advisor: hit ratio, evictions, memory, and advice on
maxmemory and the eviction policy (read-only: INFO, DBSIZE, CONFIG GET)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from loadwise.analysis.cache.advise import CacheAdvisorError
from loadwise.analysis.redact import redact


@dataclass
class RedisReport:
    """What a live Redis says of itself (INFO, DBSIZE, CONFIG GET), and advice on maxmemory and its policy."""

    hits: int
    misses: int
    hit_ratio: float | None  # keyspace_hits / (hits + misses); None before any lookup
    evicted_keys: int
    expired_keys: int
    keys: int
    used_memory: int
    maxmemory: int  # 0: unlimited
    maxmemory_policy: str
    memory_per_key: float | None
    used_share_of_maxmemory: float | None
    suggested_maxmemory: int | None = None  # for the recommended entries at the measured bytes per key
    advice: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["suggested_maxmemory"] is None:
            del out["suggested_maxmemory"]
        return out


def redis_report(url: str, recommended_entries: int | None = None) -> RedisReport:
    """Hit ratio, evictions, expirations and memory of a live Redis, with a maxmemory and policy advice."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=5)
        stats, memory = client.info("stats"), client.info("memory")
        keys = int(client.dbsize())
        config = client.config_get("maxmemory*")
    except (redis.RedisError, ValueError) as exc:
        raise CacheAdvisorError(f"Redis at {redact(url)}: {str(exc).splitlines()[0]}") from None
    hits, misses = int(stats.get("keyspace_hits", 0)), int(stats.get("keyspace_misses", 0))
    maxmemory = int(config.get("maxmemory", 0))
    used = int(memory.get("used_memory", 0))
    dataset = int(memory.get("used_memory_dataset", used))
    per_key = dataset / keys if keys else None
    policy = config.get("maxmemory-policy", "noeviction")
    report = RedisReport(
        hits=hits, misses=misses, hit_ratio=round(hits / (hits + misses), 4) if hits + misses else None,
        evicted_keys=int(stats.get("evicted_keys", 0)), expired_keys=int(stats.get("expired_keys", 0)), keys=keys,
        used_memory=used, maxmemory=maxmemory, maxmemory_policy=policy, memory_per_key=round(per_key, 1) if per_key else None,
        used_share_of_maxmemory=round(used / maxmemory, 4) if maxmemory else None,
    )  # fmt: skip
    if policy in ("noeviction",) or policy.startswith("volatile"):
        report.advice.append(f"maxmemory-policy {policy} does not evict keys without a TTL: a cache wants allkeys-lru")
    if recommended_entries and per_key:
        report.suggested_maxmemory = int((used - dataset) + recommended_entries * per_key)
        report.advice.append(f"maxmemory {report.suggested_maxmemory} bytes: {recommended_entries} entries × {per_key:.0f} "
                             f"bytes each over the {used - dataset} bytes Redis uses itself")  # fmt: skip
    if report.evicted_keys and maxmemory and used >= 0.95 * maxmemory:
        report.advice.append(f"{report.evicted_keys} keys were evicted at {used / maxmemory:.0%} of maxmemory: "
                             "the cache is too small for its traffic")  # fmt: skip
    return report
