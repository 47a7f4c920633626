"""The cache advisor: a key trace (a run's keys.csv or any CSV) in, the recommendation
built from its miss-ratio curve out, with its evidence. A live Redis's figures: redis.py."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loadwise.analysis.cache import mrc as cache
from loadwise.analysis.cache.settings import CacheSettings
from loadwise.analysis.csvinput import CsvInputError, read_timestamped
from loadwise.errors import LoadwiseError

EXACT_LIMIT = 2_000_000  # longer traces use SHARDS


class CacheAdvisorError(LoadwiseError):
    pass


def read_trace(path: Path) -> pd.DataFrame:
    """`timestamp,key[,size]` (timestamps in seconds or ISO 8601)."""
    try:
        frame = read_timestamped(path, ("key",), "columns timestamp and key (and optionally size)", dtype={"key": str})
    except CsvInputError as exc:
        raise CacheAdvisorError(str(exc)) from None
    stamps = frame["timestamp"]
    if stamps.isna().any() or not np.isfinite(stamps.astype(float)).all() or frame["key"].isna().any():
        raise CacheAdvisorError(f"{path}: every row needs a timestamp and a key")
    if "size" in frame.columns:
        frame["size"] = pd.to_numeric(frame["size"], errors="coerce")
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


@dataclass
class CacheSize:
    """The recommended cache: its size in entries (and bytes, when the trace has sizes), the hit
    ratio the miss-ratio curve predicts at that size, and a TTL range from the reuse times."""

    entries: int
    bytes: int | None
    expected_hit_ratio: float
    ttl_s: list[float]  # [low, high]
    chosen_by: str  # "knee of the curve" or "target hit ratio N%"


@dataclass
class CacheAdvice:
    """The cache advisor's answer with its evidence: the curve(s) it was read from, the trace's
    shape, and the expected effect on the backend (and on latency, when the miss latency is known)."""

    method: str  # how the curve was built: exact stack distances, or SHARDS sampling
    requests: int
    distinct_keys: int
    sample_rate: float  # the share of keys the trace holds (a run's key sample); sizes are scaled by its inverse
    one_hit_wonder_ratio: float
    reuse_time_s: dict[int, float]  # percentile -> seconds between two requests for one key
    mrc: list[dict[str, float]]  # points: size (entries), hit_ratio
    recommended: CacheSize
    expected_effect: dict[str, float]
    notes: list[str] = field(default_factory=list)
    mrc_bytes: list[dict[str, float]] | None = None  # points: bytes, hit_ratio (a trace with sizes)

    def to_dict(self) -> dict[str, Any]:
        """summary.json's `cache` object (its keys as they have always been)."""
        out = asdict(self)
        if out["mrc_bytes"] is None:
            del out["mrc_bytes"]
        return out


def analyze(trace: pd.DataFrame, settings: CacheSettings, miss_latency_ms: float | None = None,
            rate: float = 1.0) -> CacheAdvice:  # fmt: skip
    """The curve, the recommended size and TTL, and their expected effect. `rate` is the
    share of keys the trace was sampled at (a run's key sample), so sizes scale by 1/rate."""
    if len(trace) < 2:
        raise CacheAdvisorError("the key trace has fewer than two requests")
    keys = trace["key"].to_numpy()
    mrc = cache.exact_mrc(keys) if len(keys) <= EXACT_LIMIT else cache.shards_mrc(keys, settings.shards_rate)
    scale = 1.0 / rate
    size = mrc.size_for(settings.target_hit_ratio) if settings.target_hit_ratio else mrc.knee()
    if size is None:
        size = int(mrc.sizes[-1])
        note = f"no cache size reaches a {settings.target_hit_ratio:.0%} hit ratio on this trace (compulsory misses)"
    else:
        note = None
    hit = mrc.at(size)
    reuse = cache.reuse_times(keys, trace["timestamp"].to_numpy())
    quantiles = (10, 50, 90, 99)
    reuse_at = dict(zip(quantiles, map(float, np.percentile(reuse, quantiles)))) if len(reuse) else {}
    ttl_low, ttl_high = reuse_at.get(50, 0.0), reuse_at.get(90, 0.0)
    ttl_high = min(max(ttl_high, 1.0), settings.max_staleness_s)
    ttl_low = min(max(ttl_low, 1.0), ttl_high)
    byte_curve = None
    if "size" in trace.columns and trace["size"].notna().any():
        sizes = trace["size"].fillna(trace["size"].mean()).to_numpy()
        byte_curve = cache.byte_mrc(keys, sizes, 1.0 if len(keys) <= EXACT_LIMIT else settings.shards_rate)
    duration = max(float(trace["timestamp"].iloc[-1] - trace["timestamp"].iloc[0]), 1e-9)
    rps = len(trace) * scale / duration
    recommended = CacheSize(int(math.ceil(size * scale)), _bytes_for(byte_curve, hit, scale), round(hit, 4),
                            [round(ttl_low, 1), round(ttl_high, 1)],
                            f"target hit ratio {settings.target_hit_ratio:.0%}" if settings.target_hit_ratio else "knee of the curve")  # fmt: skip
    effect = {"requests_per_s": round(rps, 2), "backend_requests_per_s": round(rps * (1 - hit), 2)}
    if miss_latency_ms is not None:
        mean = hit * settings.hit_latency_ms + (1 - hit) * miss_latency_ms
        effect |= {"miss_latency_ms": round(miss_latency_ms, 3), "hit_latency_ms": settings.hit_latency_ms,
                   "mean_latency_ms": round(mean, 3)}  # fmt: skip
    notes = [note] if note else []
    if ttl_high < reuse_at.get(50, 0.0):
        notes.append(f"the staleness you accept ({settings.max_staleness_s:g} s) is shorter than most reuse times: "
                     "entries will expire before they are reused")  # fmt: skip
    return CacheAdvice(
        method=mrc.method, requests=int(len(trace) * scale), distinct_keys=int(mrc.distinct * scale), sample_rate=rate,
        one_hit_wonder_ratio=round(cache.one_hit_wonder_ratio(keys), 4),
        reuse_time_s={q: round(value, 3) for q, value in reuse_at.items()},
        mrc=[{"size": int(round(p["size"] * scale)), "hit_ratio": p["hit_ratio"]} for p in mrc.points()],
        recommended=recommended, expected_effect=effect, notes=notes,
        mrc_bytes=None if byte_curve is None else
        [{"bytes": int(round(p["size"] * scale)), "hit_ratio": p["hit_ratio"]} for p in byte_curve.points()],
    )  # fmt: skip


def _bytes_for(curve: cache.MissRatioCurve | None, hit_ratio: float, scale: float) -> int | None:
    """The smallest cache in bytes reaching the hit ratio the entry count reaches."""
    if curve is None:
        return None
    size = curve.size_for(hit_ratio - 1e-9)
    return int(math.ceil((size if size is not None else curve.sizes[-1]) * scale))
