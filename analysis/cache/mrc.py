"""Miss-ratio curves for an LRU cache, from request-key traces.

Exact: Mattson's stack algorithm. An access's stack distance is the number of distinct
keys since the previous access to the same key; it hits an LRU cache of C entries when
the distance is below C. The distances are computed for the whole trace at once: with
p[i] the previous access to the key of access i, the distinct keys in between are
(i − p[i] − 1) minus the accesses k < i whose own previous access p[k] lies after p[i]
(they repeat a key already counted). Those counts come from bottom-up merge passes over
the trace (stable sorts by segment and p), O(n log² n) in numpy, no per-request Python.

Sampled: SHARDS (Waldspurger et al., FAST 2015): keep the accesses whose key hashes
below R·2^24, compute their stack distances, scale them by 1/R, and correct the first
bucket by the difference between the expected and the actual number of samples
(SHARDS-adj).

In bytes: the same passes summing sizes instead of counting accesses give the bytes of
the distinct keys between two accesses; the access hits a cache of B bytes when those
bytes plus its own size fit in B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loadwise.analysis.cache.keys import HASH_SPACE



def key_codes(keys: np.ndarray | list) -> np.ndarray:
    """Dense integer codes for arbitrary keys (strings or numbers)."""
    _, codes = np.unique(np.asarray(keys), return_inverse=True)
    return codes.astype(np.int64)


def previous_positions(codes: np.ndarray) -> np.ndarray:
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    prev = np.full(len(codes), -1, dtype=np.int64)
    same = ordered[1:] == ordered[:-1]
    prev[order[1:][same]] = order[:-1][same]
    return prev


def _earlier_greater(p: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """c[i] = #{k < i : p[k] > p[i]}, or the sum of weights[k] over those k."""
    n = len(p)
    counts = np.zeros(n, dtype=np.int64 if weights is None else float)
    idx = np.arange(n, dtype=np.int64)
    order = idx.copy()
    size = 1
    while size < n:
        seg = idx // (2 * size)
        left = (idx // size) % 2 == 0
        key = seg[order] * (n + 1) + (p[order] + 1)
        perm = np.argsort(key, kind="stable")  # two sorted runs per segment: a merge
        order, key = order[perm], key[perm]
        is_left = left[order].astype(np.int64) if weights is None else left[order] * weights[order]
        seg_sorted = seg[order]
        csum = np.cumsum(is_left)
        starts = np.searchsorted(seg_sorted, seg_sorted, side="left")
        base = np.where(starts > 0, csum[np.maximum(starts - 1, 0)], 0)
        ends = np.searchsorted(seg_sorted, seg_sorted, side="right")
        total_left = csum[ends - 1] - base
        up_to_equal = csum[np.searchsorted(key, key, side="right") - 1] - base
        right = ~left[order]
        counts[order[right]] += (total_left - up_to_equal)[right]
        size *= 2
    return counts


def byte_distances(codes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Bytes of the distinct keys accessed since the previous access to the same key; -1 for a first access."""
    codes, sizes = np.asarray(codes, dtype=np.int64), np.asarray(sizes, dtype=float)
    p = previous_positions(codes)
    before = np.concatenate(([0.0], np.cumsum(sizes)))  # before[j] = bytes of accesses 0..j-1
    i = np.arange(len(codes), dtype=np.int64)
    window = before[i] - before[np.maximum(p, 0) + 1]
    return np.where(p >= 0, window - _earlier_greater(p, sizes), -1.0)


def stack_distances(codes: np.ndarray) -> np.ndarray:
    """LRU stack distance of every access; -1 for a key's first access (a cold miss)."""
    codes = np.asarray(codes, dtype=np.int64)
    p = previous_positions(codes)
    c = _earlier_greater(p)
    i = np.arange(len(codes), dtype=np.int64)
    return np.where(p >= 0, i - p - 1 - c, -1)


@dataclass
class MissRatioCurve:
    sizes: np.ndarray  # cache sizes in entries (or bytes, for byte_mrc), ascending
    hit_ratio: np.ndarray
    requests: int
    distinct: int
    method: str  # "exact" or "shards"
    rate: float = 1.0

    def at(self, entries: float) -> float:
        return float(np.interp(entries, self.sizes, self.hit_ratio))

    def size_for(self, hit_ratio: float) -> int | None:
        reach = np.flatnonzero(self.hit_ratio >= hit_ratio)
        return int(self.sizes[reach[0]]) if len(reach) else None

    def knee(self) -> int:
        """Where the curve bends: farthest point from the chord, on a log-size axis."""
        x, y = np.log(self.sizes), self.hit_ratio
        if len(x) < 3 or y[-1] - y[0] <= 0:
            return int(self.sizes[-1])
        xn, yn = (x - x[0]) / (x[-1] - x[0]), (y - y[0]) / (y[-1] - y[0])
        return int(self.sizes[int(np.argmax(yn - xn))])

    def points(self, count: int = 60) -> list[dict[str, float]]:
        """At least `count` points spread over the curve, more where it bends."""
        grid = np.unique(np.concatenate([np.geomspace(max(self.sizes[0], 1), self.sizes[-1], count).round(),
                                         np.geomspace(max(self.knee() / 4, 1), min(self.knee() * 4, self.sizes[-1]), count // 2).round()]))  # fmt: skip
        return [{"size": int(s), "hit_ratio": round(self.at(s), 5)} for s in grid]


def _curve(distances: np.ndarray, requests: int, distinct: int, method: str, rate: float, adjust: float = 0.0) -> MissRatioCurve:
    hits = distances[distances >= 0]
    if requests == 0:
        raise ValueError("the trace is empty")
    max_size = max(int(distinct), 1)
    counts = np.bincount(np.minimum(hits, max_size).astype(np.int64), minlength=max_size + 1).astype(float)
    if adjust >= 0:
        counts[0] += adjust
    else:  # an oversized sample (hot keys drawn): take the excess from the smallest distances
        cumulative = np.cumsum(counts)
        take = np.minimum(cumulative, -adjust) - np.concatenate(([0.0], np.minimum(cumulative, -adjust)[:-1]))
        counts -= take
    cumulative = np.cumsum(counts)  # cumulative[c] = hits with distance <= c
    sizes = np.unique(np.geomspace(1, max_size, 400).round().astype(np.int64))
    if rate < 1:
        # A sampled distance d stands for true distances d/R .. (d+1)/R: spread it evenly.
        step = 1.0 / rate
        grid = np.arange(0, max_size + step, step)
        at_grid = np.concatenate(([0.0], cumulative[np.minimum((grid[1:] - 1).astype(np.int64), max_size)]))
        hits_at = np.interp(sizes, grid, at_grid)
    else:
        hits_at = cumulative[sizes - 1]
    hit_ratio = np.clip(hits_at / requests, 0, 1)
    return MissRatioCurve(sizes.astype(float), hit_ratio, requests, distinct, method, rate)


def exact_mrc(keys: np.ndarray | list) -> MissRatioCurve:
    codes = key_codes(keys)
    return _curve(stack_distances(codes), len(codes), int(codes.max()) + 1 if len(codes) else 0, "exact", 1.0)


def spatial_hash(codes: np.ndarray, seed: int = 0) -> np.ndarray:
    """A stable 24-bit hash per key code (splitmix64), the same in every process."""
    x = (codes.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(seed + 1))
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x % np.uint64(HASH_SPACE)).astype(np.int64)


def shards_mrc(keys: np.ndarray | list, rate: float = 0.01, seed: int = 0) -> MissRatioCurve:
    codes = key_codes(keys)
    sampled = codes[spatial_hash(codes, seed) < rate * HASH_SPACE]
    if len(sampled) == 0:
        raise ValueError(f"no access sampled at rate {rate}: the trace is too short for SHARDS")
    distances = stack_distances(key_codes(sampled))
    scaled = np.where(distances >= 0, np.floor(distances / rate), -1).astype(np.int64)  # bucket starts, 1/R wide
    expected = rate * len(codes)
    distinct = int(codes.max()) + 1
    # SHARDS-adj: the sample's shortfall (or excess) against N·R goes to the first bucket,
    # and hit ratios are counted out of N·R.
    curve = _curve(scaled, int(round(expected)), distinct, "shards", rate, adjust=expected - len(sampled))
    curve.requests = len(codes)
    return curve


def byte_mrc(keys: np.ndarray | list, sizes: np.ndarray | list, rate: float = 1.0, seed: int = 0) -> MissRatioCurve:
    """Hit ratio against cache size in bytes; `rate` < 1 samples keys spatially (SHARDS, without the -adj step)."""
    codes, sizes = key_codes(keys), np.asarray(sizes, dtype=float)
    method = "exact"
    if rate < 1:
        keep = spatial_hash(codes, seed) < rate * HASH_SPACE
        codes, sizes, method = key_codes(codes[keep]), sizes[keep], "shards"
        if len(codes) == 0:
            raise ValueError(f"no access sampled at rate {rate}: the trace is too short for SHARDS")
    distances = byte_distances(codes, sizes)
    hit = distances >= 0
    needed = np.sort(distances[hit] / rate + sizes[hit])  # the smallest cache each reuse hits in
    if len(needed) == 0:  # no key is ever reused: no cache helps
        return MissRatioCurve(np.array([sizes.max()]), np.zeros(1), len(codes), int(codes.max()) + 1, method, rate)
    grid, first = np.unique(needed, return_index=True)
    hits_upto = np.append(first[1:], len(needed))  # accesses needing at most grid[j]
    return MissRatioCurve(grid, hits_upto / len(codes), len(codes), int(codes.max()) + 1, method, rate)


def zipf_trace(requests: int, keys: int, exponent: float, seed: int = 0) -> np.ndarray:
    """Independent requests over `keys` keys with Zipf popularity p(k) ∝ k^-exponent."""
    weights = np.arange(1, keys + 1, dtype=float) ** -exponent
    cdf = np.cumsum(weights / weights.sum())
    return np.searchsorted(cdf, np.random.default_rng(seed).random(requests)).astype(np.int64)




def reuse_times(keys: np.ndarray | list, timestamps: np.ndarray) -> np.ndarray:
    """Seconds between consecutive accesses to the same key."""
    codes = key_codes(keys)
    p = previous_positions(codes)
    t = np.asarray(timestamps, dtype=float)
    return (t - t[np.maximum(p, 0)])[p >= 0]


def one_hit_wonder_ratio(keys: np.ndarray | list) -> float:
    _, counts = np.unique(np.asarray(keys), return_counts=True)
    return float((counts == 1).sum() / len(counts)) if len(counts) else 0.0
