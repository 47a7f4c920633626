"""Baseline comparison: is this run slower, more error-prone or slower-serving than the baseline?

For each endpoint and overall, and for p50, p95, p99, error rate and throughput, the
change is estimated with a moving-block bootstrap over intervals: intervals are
resampled in blocks of consecutive ones (so the autocorrelation inside a run is kept),
each run independently, and the statistic is recomputed from the resampled merged HDR
histograms. The decision needs both a confidence interval that excludes "no change" and
an estimated change of at least the minimum effect (default 5 %) and, for latencies, of
at least a minimum delta (default 2 ms): these absorb the noise between runs that a
single pair of runs cannot measure (two runs of the same build on a shared machine
differed by 11 % at a 1.5 ms p50).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from loadwise.analysis import histogram
from loadwise.analysis.gate_settings import MIN_DELTA_MS

REGRESSION, IMPROVEMENT, NO_CHANGE = "regression", "improvement", "no change"
PERCENTILE_METRICS = {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0}
METRICS = (*PERCENTILE_METRICS, "error_rate", "rps")
ERROR_RATE_FLOOR = 0.001  # error-rate changes are absolute; below 0.1 percentage point is noise
CONFIDENCE = 0.99


@dataclass
class Series:
    """One endpoint (or all) of one run, per interval: bucket counts over a shared set of buckets."""

    counts: np.ndarray  # (intervals, buckets)
    bucket_ms: np.ndarray  # (buckets,) value each bucket stands for
    requests: np.ndarray  # (intervals,)
    failures: np.ndarray  # (intervals,)
    interval_s: float

    @property
    def n(self) -> int:
        return len(self.requests)


def series_from_intervals(intervals: pd.DataFrame, method: str | None = None, name: str | None = None,
                          sparse: list[histogram.Sparse] | None = None) -> Series:  # fmt: skip
    """The intervals of one endpoint (or all endpoints when method/name are None) as a Series.
    `sparse`, all of `intervals`' histograms already decoded in row order, saves decoding them again."""
    if sparse is None:
        sparse = [histogram.sparse_counts(text) for text in intervals["hdr"]]
    if name is None:
        rows = intervals.reset_index(drop=True)
    else:
        chosen = np.flatnonzero((intervals["method"] == method).to_numpy() & (intervals["name"] == name).to_numpy())
        rows, sparse = intervals.iloc[chosen].reset_index(drop=True), [sparse[i] for i in chosen]
    groups = list(rows.groupby("start", sort=True).indices.values())  # groupby never yields an empty group
    per_interval = []
    for where in groups:
        index = np.concatenate([sparse[i][0] for i in where])
        counts = np.concatenate([sparse[i][1] for i in where])
        per_interval.append((index, counts))
    union = np.unique(np.concatenate([p[0] for p in per_interval])) if per_interval else np.array([], dtype=np.int64)
    dense = np.zeros((len(per_interval), len(union)), dtype=np.float64)
    for row, (index, counts) in enumerate(per_interval):
        np.add.at(dense[row], np.searchsorted(union, index), counts)
    return Series(
        counts=dense,
        bucket_ms=histogram.bucket_upper_us(union) / 1000.0,
        requests=np.array([rows.loc[w, "requests"].sum() for w in groups], dtype=float),
        failures=np.array([rows.loc[w, "failures"].sum() for w in groups], dtype=float),
        interval_s=float(rows["interval_s"].iloc[0]) if len(rows) else 1.0,
    )


def _percentile(counts: np.ndarray, bucket_ms: np.ndarray, q: float) -> np.ndarray:
    """Percentile of each row of merged counts, HdrHistogram's rule (value at the q-th count)."""
    total = counts.sum(axis=1)
    target = np.maximum(np.floor(q * total / 100.0 + 0.5), 1)
    cumulative = np.cumsum(counts, axis=1)
    index = (cumulative >= target[:, None]).argmax(axis=1)
    out = bucket_ms[index] if len(bucket_ms) else np.full(len(total), np.nan)
    return np.where(total > 0, out, np.nan)


def statistic(series: Series, metric: str, weights: np.ndarray) -> np.ndarray:
    """The metric for each row of interval weights (rows: bootstrap replicates)."""
    if metric in PERCENTILE_METRICS:
        return _percentile(weights @ series.counts, series.bucket_ms, PERCENTILE_METRICS[metric])
    requests = weights @ series.requests
    if metric == "error_rate":
        return np.divide(weights @ series.failures, requests, out=np.full(len(requests), np.nan), where=requests > 0)
    return requests / (weights.sum(axis=1) * series.interval_s)  # rps


def block_weights(n: int, resamples: int, rng: np.random.Generator, block: int | None = None) -> np.ndarray:
    """How many times each interval is drawn, per replicate of a moving-block bootstrap."""
    size = block or max(1, round(n ** (1 / 3)))
    size = min(size, n)
    blocks = math.ceil(n / size)
    starts = rng.integers(0, n - size + 1, size=(resamples, blocks))
    picks = (starts[:, :, None] + np.arange(size)).reshape(resamples, -1)[:, :n]
    weights = np.zeros((resamples, n))
    np.add.at(weights, (np.repeat(np.arange(resamples), n), picks.ravel()), 1)
    return weights


@dataclass
class Comparison:
    endpoint: str  # "overall" or "METHOD name"
    metric: str
    baseline: float | None
    current: float | None
    change: float | None  # ratio - 1, or the absolute difference for error_rate
    low: float | None
    high: float | None
    decision: str
    relative: bool = True  # False: change/low/high are absolute (error_rate)
    confidence: float = CONFIDENCE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def value_text(self, v: float | None) -> str:
        """A value of this comparison's metric (an error rate in %)."""
        if v is None:
            return "–"
        return f"{100 * v:.2f}%" if self.metric == "error_rate" else f"{v:.1f}"

    def change_text(self, v: float | None) -> str:
        """A change: relative in %, or absolute in percentage points."""
        if v is None:
            return "–"
        return f"{v:+.1%}" if self.relative else f"{100 * v:+.2f} pp"

    def describe(self) -> str:
        val, fmt = self.value_text, self.change_text
        return (f"{self.endpoint} {self.metric}: {val(self.baseline)} -> {val(self.current)}, "
                f"change {fmt(self.change)} [{self.confidence:.0%} CI {fmt(self.low)}, {fmt(self.high)}]: {self.decision}")  # fmt: skip


def compare_series(base: Series, current: Series, metric: str, endpoint: str, min_effect: float = 0.05,
                   resamples: int = 1000, confidence: float = CONFIDENCE, seed: int = 0,
                   min_delta_ms: float = MIN_DELTA_MS) -> Comparison:  # fmt: skip
    rng = np.random.default_rng(seed)
    if base.n == 0 or current.n == 0:
        return Comparison(endpoint, metric, None, None, None, None, None, NO_CHANGE)
    full_b = float(statistic(base, metric, np.ones((1, base.n)))[0])
    full_c = float(statistic(current, metric, np.ones((1, current.n)))[0])
    boot_b = statistic(base, metric, block_weights(base.n, resamples, rng))
    boot_c = statistic(current, metric, block_weights(current.n, resamples, rng))
    tail = (1 - confidence) / 2 * 100
    higher_is_worse = metric != "rps"
    if metric == "error_rate":
        diffs = boot_c - boot_b
        change = full_c - full_b
        low, high = (float(v) for v in np.nanpercentile(diffs, [tail, 100 - tail]))
        floor = max(ERROR_RATE_FLOOR, min_effect * full_b)
        worse, better = low > 0 and change > floor, high < 0 and change < -floor
        return Comparison(endpoint, metric, full_b, full_c, change, low, high,
                          REGRESSION if worse else IMPROVEMENT if better else NO_CHANGE, False, confidence)  # fmt: skip
    if not (full_b > 0 and math.isfinite(full_b) and math.isfinite(full_c)):
        return Comparison(endpoint, metric, full_b, full_c, None, None, None, NO_CHANGE)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = boot_c / boot_b
    ratios = ratios[np.isfinite(ratios)]
    change = full_c / full_b - 1
    low, high = (float(v) - 1 for v in np.percentile(ratios, [tail, 100 - tail]))
    big_enough = metric not in PERCENTILE_METRICS or abs(full_c - full_b) >= min_delta_ms
    up = low > 0 and change >= min_effect and big_enough
    down = high < 0 and change <= -min_effect and big_enough
    if higher_is_worse:
        decision = REGRESSION if up else IMPROVEMENT if down else NO_CHANGE
    else:
        decision = IMPROVEMENT if up else REGRESSION if down else NO_CHANGE
    return Comparison(endpoint, metric, full_b, full_c, change, low, high, decision, True, confidence)


def compare_runs(base: pd.DataFrame, current: pd.DataFrame, min_effect: float = 0.05, resamples: int = 1000,
                 metrics: tuple[str, ...] = METRICS, seed: int = 0, min_delta_ms: float = MIN_DELTA_MS) -> list[Comparison]:  # fmt: skip
    """Overall and per endpoint present in both runs; endpoints only in one run are skipped."""
    results = []
    pairs: list[tuple[str, str | None, str | None]] = [("overall", None, None)]
    base_eps = set(zip(base["method"], base["name"]))
    for method, name in sorted(set(zip(current["method"], current["name"])) & base_eps):
        pairs.append((f"{method} {name}", method, name))
    base_sparse = [histogram.sparse_counts(text) for text in base["hdr"]]  # decoded once for every endpoint
    current_sparse = [histogram.sparse_counts(text) for text in current["hdr"]]
    for label, method, name in pairs:
        b = series_from_intervals(base, method, name, base_sparse)
        c = series_from_intervals(current, method, name, current_sparse)
        for metric in metrics:
            results.append(compare_series(b, c, metric, label, min_effect, resamples, seed=seed, min_delta_ms=min_delta_ms))
    return results
