"""The settings of `loadwise advise cache`, each default declared once (light: read by every --help)."""

from __future__ import annotations

from dataclasses import dataclass

from loadwise.settings import option


@dataclass
class CacheSettings:
    """`loadwise advise cache` options."""

    target_hit_ratio: float | None = option(None, "size for this hit ratio instead of the knee", parse="fraction")
    max_staleness_s: float = option(300.0, "longest an entry may be stale", flag="--max-staleness", parse="duration")
    hit_latency_ms: float = option(1.0, "latency of a cache hit", flag="--hit-latency", parse="ms")
    shards_rate: float = 0.01  # SHARDS sampling rate for traces too long for exact stack distances
