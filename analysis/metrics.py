"""Server metrics in one tidy form, whichever collector produced them.

A row is (timestamp, source, series, labels, value): `source` is `prometheus` or
`scrape`, `series` one of the names below (or a name from the profile's own queries),
`labels` a JSON object. The embedded collector's scrapes are turned into the same series
the default PromQL queries give: counters become per-second rates (resets handled) and
histograms become p50/p95/p99, so every later step reads one format.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from loadwise.analysis.rundir import METRIC_COLUMNS

# Series every collector produces for a plain HTTP service, and the metric names they
# read (prometheus_client's process collector and the common http_* conventions).
CPU = "cpu_cores"
MEMORY = "memory_bytes"
SERVER_RPS = "server_rps"
SERVER_ERROR_RPS = "server_error_rps"
IN_FLIGHT = "in_flight"
SERVER_QUANTILES = {"server_p50_ms": 0.50, "server_p95_ms": 0.95, "server_p99_ms": 0.99}

CPU_SECONDS = "process_cpu_seconds_total"
RESIDENT_MEMORY = "process_resident_memory_bytes"
REQUESTS = "http_requests_total"
DURATION_BUCKET = "http_request_duration_seconds_bucket"
IN_PROGRESS = "http_requests_in_progress"
# What the embedded scraper keeps of a scrape: a /metrics with 100,000 other series must
# not grow the load generator (it keeps only these, whatever else the target exposes).
SCRAPED_NAMES = frozenset({CPU_SECONDS, RESIDENT_MEMORY, REQUESTS, DURATION_BUCKET, IN_PROGRESS})

Labels = tuple[tuple[str, str], ...]


@dataclass
class Snapshot:
    """One scrape: when, and every sample as {(sample name, sorted labels): value}."""

    t: float
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)

    def values(self, name: str) -> dict[Labels, float]:
        return {labels: v for (n, labels), v in self.samples.items() if n == name}


def labels_json(labels: dict[str, str] | Labels) -> str:
    return json.dumps(dict(labels), sort_keys=True)


def increase(prev: float | None, cur: float) -> float:
    """Counter increase between two readings; a drop means the process restarted."""
    if prev is None or cur < prev:
        return cur
    return cur - prev


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative bucket counts {upper bound: count}."""
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # the highest finite bound, as Prometheus answers
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _rate(prev: Snapshot, cur: Snapshot, name: str, keep: Any = None) -> float:
    before = prev.values(name)
    total = 0.0
    for labels, value in cur.values(name).items():
        if keep is None or keep(dict(labels)):
            total += increase(before.get(labels), value)
    return total / (cur.t - prev.t)


def _bucket_increases(prev: Snapshot, cur: Snapshot) -> dict[float, float]:
    before = prev.values(DURATION_BUCKET)
    by_le: dict[float, float] = {}
    for labels, value in cur.values(DURATION_BUCKET).items():
        le = float(dict(labels)["le"])
        by_le[le] = by_le.get(le, 0.0) + increase(before.get(labels), value)
    return by_le


def derive(snapshots: Sequence[Snapshot], source: str = "scrape") -> list[dict[str, Any]]:
    """Tidy rows of the standard series from consecutive scrapes of one target."""
    rows: list[dict[str, Any]] = []

    def add(t: float, series: str, value: float | None) -> None:
        if value is not None and math.isfinite(value):
            rows.append({"timestamp": t, "source": source, "series": series, "labels": "{}", "value": value})

    for prev, cur in zip(snapshots, snapshots[1:]):
        if cur.t <= prev.t:
            continue
        if cur.values(CPU_SECONDS):
            add(cur.t, CPU, _rate(prev, cur, CPU_SECONDS))
        if cur.values(REQUESTS):
            add(cur.t, SERVER_RPS, _rate(prev, cur, REQUESTS))
            add(cur.t, SERVER_ERROR_RPS, _rate(prev, cur, REQUESTS, lambda lb: lb.get("status", "").startswith("5")))
        buckets = _bucket_increases(prev, cur)
        for series, q in SERVER_QUANTILES.items():
            quantile = histogram_quantile(q, buckets)
            add(cur.t, series, None if quantile is None else quantile * 1000.0)
    for snap in snapshots:
        if snap.values(RESIDENT_MEMORY):
            add(snap.t, MEMORY, sum(snap.values(RESIDENT_MEMORY).values()))
        if snap.values(IN_PROGRESS):
            add(snap.t, IN_FLIGHT, sum(snap.values(IN_PROGRESS).values()))
    return rows


def from_prometheus(series: str, result: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tidy rows from a range query's `result` (matrix)."""
    rows = []
    for item in result:
        labels = {k: v for k, v in item.get("metric", {}).items() if k != "__name__"}
        for ts, raw in item.get("values", []):
            value = float(raw)
            if math.isfinite(value):
                rows.append({"timestamp": float(ts), "source": "prometheus", "series": series,
                             "labels": labels_json(labels), "value": value})  # fmt: skip
    return rows


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows with epoch-second timestamps as a metrics frame (UTC timestamps)."""
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype(float), unit="s", utc=True)
    return frame.sort_values(["source", "series", "labels", "timestamp"], kind="stable").reset_index(drop=True)
