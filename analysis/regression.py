"""Baseline comparison: is this run slower, more error-prone or slower-serving than the baseline?

Two runs of one build differ by far more than the noise inside either run (the target's
caches, the machine's other work, where the run's seconds fell), so a decision is made
against the noise *between* runs:

- With several baseline runs (same scenario and shape), each metric's run-to-run spread is
  measured from them, and the new run is a regression when it falls outside the 99 %
  prediction interval for one more run of the baseline's build (on the log scale:
  mean ± t(k-1) · sd · sqrt(1 + 1/k)), by at least the minimum effect and delta.
- With one baseline run, that spread cannot be measured: the change must clear a default
  between-run allowance per metric, measured on real same-build runs (BETWEEN_RUN), as
  well as a moving-block bootstrap interval over the two runs' intervals that excludes
  "no change" (blocks of consecutive intervals keep each run's autocorrelation).

A metric is judged only where it means something: an endpoint needs enough requests for
the percentile (MIN_REQUESTS), and throughput is judged only when the closed-model run
was saturated (users waited on responses more than they thought), since otherwise the
users, not the service, set the request rate. Every comparison says what it was judged
against, or why it was not judged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from loadwise.analysis import histogram
from loadwise.analysis.gate_settings import MIN_DELTA_MS, MIN_EFFECT, RESAMPLES, GateSettings

REGRESSION, IMPROVEMENT, NO_CHANGE, NOT_JUDGED = "regression", "improvement", "no change", "not judged"
PERCENTILE_METRICS = {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0}
METRICS = (*PERCENTILE_METRICS, "error_rate", "rps")
ERROR_RATE_FLOOR = 0.001  # error-rate changes are absolute; below 0.1 percentage point is noise
CONFIDENCE = 0.99
# Requests an endpoint needs in each run before a metric is judged: the p99 of 100
# requests is their single slowest one.
MIN_REQUESTS = {"p50_ms": 30, "p95_ms": 100, "p99_ms": 500, "error_rate": 100, "rps": 30}
# The change one pair of same-build runs can show with no change at all, per metric,
# measured with `loadwise gate --calibrate` on 10 same-build runs of `loadwise run browse
# -u 20 -r 20 -t 12s --interval 1` against one demo target (2 cores, other work running,
# as in CI on a shared machine): the largest |change| over the 90 ordered pairs was 43.5 %
# for an endpoint's p50 (33 % overall), 151 % for p95 (a 2.3 ms p95 read 5.4 ms in one run),
# 8.7 % for request rate, 0 for error rate; rounded up. p99 had too few requests to
# measure and takes p95's. Relative for latencies and rps; absolute for error_rate.
BETWEEN_RUN = {"p50_ms": 0.50, "p95_ms": 1.60, "p99_ms": 1.60, "error_rate": 0.005, "rps": 0.10}
RATE_NOT_JUDGED = "not saturated: under a closed model with think time the users set the rate"
SATURATED_SHARE = 0.5  # response time above this share of a user's cycle: the service sets the rate


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
    noise: str = ""  # what the change was judged against, or why it was not judged
    requests: tuple[int, int] = (0, 0)  # (baseline, this run)

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
        if self.decision == NOT_JUDGED:
            return f"{self.endpoint} {self.metric}: not judged: {self.noise}"
        return (f"{self.endpoint} {self.metric}: {val(self.baseline)} -> {val(self.current)}, "
                f"change {fmt(self.change)} [{self.confidence:.0%} interval {fmt(self.low)}, {fmt(self.high)}]"
                f"{', judged against ' + self.noise if self.noise else ''}: {self.decision}")  # fmt: skip


def compare_series(base: Series, current: Series, metric: str, endpoint: str, min_effect: float = MIN_EFFECT,
                   resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0,
                   min_delta_ms: float = MIN_DELTA_MS, allowance: float = 0.0) -> Comparison:  # fmt: skip
    """One pair of runs: a moving-block bootstrap interval of the change that must exclude zero,
    and a change of at least max(min_effect, allowance) (the between-run allowance)."""
    rng = np.random.default_rng(seed)
    min_effect = max(min_effect, allowance)
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
        floor = max(ERROR_RATE_FLOOR, allowance, min_effect * full_b if not allowance else 0.0)
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


def saturated(intervals: pd.DataFrame) -> bool | None:
    """Whether a closed-model run's users spent most of their cycle waiting for responses
    (then the service sets the request rate); None when the run has no user counts."""
    users = pd.to_numeric(intervals.get("users"), errors="coerce") if "users" in intervals else None
    if users is None or users.isna().all() or intervals["requests"].sum() == 0:
        return None
    starts = intervals["start"].nunique()
    rps = intervals["requests"].sum() / (starts * float(intervals["interval_s"].iloc[0]))
    per_interval = intervals.groupby("start")["users"].max()  # every endpoint's row carries the run's users
    mean_users = float(pd.to_numeric(per_interval, errors="coerce").mean())
    response_s = float((intervals["mean_ms"] * intervals["requests"]).sum() / intervals["requests"].sum()) / 1000.0
    cycle_s = mean_users / rps if rps > 0 else math.inf
    return response_s >= SATURATED_SHARE * cycle_s


def _unjudged(endpoint: str, metric: str, base: float | None, current: float | None, why: str,
              requests: tuple[int, int]) -> Comparison:  # fmt: skip
    return Comparison(endpoint, metric, base, current, None, None, None, NOT_JUDGED, metric != "error_rate",
                      noise=why, requests=requests)  # fmt: skip


def _full(series: Series, metric: str) -> float:
    return float(statistic(series, metric, np.ones((1, series.n)))[0]) if series.n else float("nan")


def _prediction(values: np.ndarray, current: float, metric: str, endpoint: str, min_effect: float, min_delta_ms: float,
                confidence: float, requests: tuple[int, int]) -> Comparison:  # fmt: skip
    """The new run against the prediction interval for one more run of the baselines' build."""
    from scipy import stats

    k = len(values)
    mean = float(np.mean(values))
    absolute = metric == "error_rate"
    if absolute:
        centre, spread, new = mean, float(np.std(values, ddof=1)), current
    else:
        if not (np.all(values > 0) and current > 0):
            return _unjudged(endpoint, metric, mean, current, "a baseline run has no value for it", requests)
        logs = np.log(values)
        centre, spread, new = float(logs.mean()), float(logs.std(ddof=1)), math.log(current)
    half = float(stats.t.ppf(1 - (1 - confidence) / 2, k - 1)) * spread * math.sqrt(1 + 1 / k)
    low, high = centre - half, centre + half
    if absolute:
        change, lo, hi = current - mean, low - mean, high - mean
        floor = max(ERROR_RATE_FLOOR, min_effect * mean)
        worse, better = new > high and change > floor, new < low and change < -floor
    else:
        base = math.exp(centre)
        change, lo, hi = current / base - 1, math.exp(low) / base - 1, math.exp(high) / base - 1
        big_enough = metric not in PERCENTILE_METRICS or abs(current - base) >= min_delta_ms
        up, down = new > high and change >= min_effect and big_enough, new < low and change <= -min_effect and big_enough
        worse, better = (up, down) if metric != "rps" else (down, up)
        mean = base
    decision = REGRESSION if worse else IMPROVEMENT if better else NO_CHANGE
    noise = f"the {confidence:.0%} prediction interval of {k} baseline runs"
    return Comparison(endpoint, metric, mean, current, change, lo, hi, decision, not absolute, confidence, noise, requests)


def compare_runs(base: pd.DataFrame | list[pd.DataFrame], current: pd.DataFrame, settings: GateSettings | None = None,
                 metrics: tuple[str, ...] = METRICS, seed: int = 0,
                 between_run: dict[str, float] | None = None) -> list[Comparison]:  # fmt: skip
    """Overall and per endpoint present in every run; endpoints only in some runs are skipped.

    `base` is one baseline run's intervals or several (then their run-to-run spread decides);
    `settings` gives the minimum effect and delta and the resamples; `between_run` overrides
    the default allowances of a single-baseline comparison."""
    settings = settings or GateSettings()
    min_effect, min_delta_ms = settings.min_effect, settings.min_delta
    baselines = [base] if isinstance(base, pd.DataFrame) else list(base)
    if not baselines:
        raise ValueError("compare_runs needs at least one baseline run")
    allowances = BETWEEN_RUN | (between_run or {})
    endpoints = set(zip(current["method"], current["name"]))
    for frame in baselines:
        endpoints &= set(zip(frame["method"], frame["name"]))
    pairs: list[tuple[str, str | None, str | None]] = [("overall", None, None)]
    pairs += [(f"{method} {name}", method, name) for method, name in sorted(endpoints)]
    judge_rate = bool(saturated(current)) and all(saturated(frame) for frame in baselines)
    base_sparse = [[histogram.sparse_counts(text) for text in frame["hdr"]] for frame in baselines]  # decoded once
    current_sparse = [histogram.sparse_counts(text) for text in current["hdr"]]
    results = []
    for label, method, name in pairs:
        bs = [series_from_intervals(frame, method, name, sparse) for frame, sparse in zip(baselines, base_sparse)]
        c = series_from_intervals(current, method, name, current_sparse)
        n_base, n_current = int(min(b.requests.sum() for b in bs)), int(c.requests.sum())
        for metric in metrics:
            requests = (n_base, n_current)
            base_value = float(np.mean([_full(b, metric) for b in bs]))
            if min(requests) < MIN_REQUESTS[metric]:
                results.append(_unjudged(label, metric, base_value, _full(c, metric),
                                         f"too few requests (n={min(requests)}, needs {MIN_REQUESTS[metric]})", requests))
                continue
            if metric == "rps" and not judge_rate:
                results.append(_unjudged(label, metric, base_value, _full(c, metric),
                                         RATE_NOT_JUDGED,
                                         requests))  # fmt: skip
                continue
            if len(bs) >= 2:
                values = np.array([_full(b, metric) for b in bs])
                results.append(_prediction(values, _full(c, metric), metric, label, min_effect, min_delta_ms,
                                           CONFIDENCE, requests))  # fmt: skip
                continue
            comparison = compare_series(bs[0], c, metric, label, min_effect, settings.resamples, seed=seed,
                                        min_delta_ms=min_delta_ms, allowance=allowances[metric])  # fmt: skip
            comparison.requests = requests
            comparison.noise = f"between-run allowance {comparison.change_text(allowances[metric])} (one baseline run)"
            results.append(comparison)
    return results
