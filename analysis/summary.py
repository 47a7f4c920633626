"""Per-endpoint and overall statistics of a run, from its stored interval histograms."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from loadwise.analysis import histogram
from loadwise.analysis.rundir import RunDir, RunInfo, epoch_of


def _finite(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def stats_of(rows: pd.DataFrame, duration_s: float, counts: np.ndarray | None = None) -> dict[str, Any]:
    """Statistics of a set of interval rows, percentiles from their merged histograms
    (`counts`, when the caller has merged them already)."""
    requests = int(rows["requests"].sum()) if len(rows) else 0
    failures = int(rows["failures"].sum()) if len(rows) else 0
    if counts is None:
        counts = histogram.merged_counts(rows["hdr"])
    slowest = float(rows["max_ms"].max()) if requests else None
    pct = dict(zip(histogram.PERCENTILES, histogram.percentiles_from_counts(counts, histogram.PERCENTILES.values(), slowest)))
    mean = float((rows["mean_ms"] * rows["requests"]).sum() / requests) if requests else float("nan")
    stats: dict[str, Any] = {
        "requests": requests,
        "failures": failures,
        "rps": round(requests / duration_s, 3) if duration_s > 0 else None,
        "error_rate": round(failures / requests, 6) if requests else None,
        "mean_ms": mean,
        **pct,
        "max_ms": float(rows["max_ms"].max()) if requests else float("nan"),
    }
    for key in ("mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"):
        stats[key] = _finite(round(stats[key], 3))
    return stats


def run_duration_s(info: RunInfo, intervals: pd.DataFrame) -> float:
    """How long the load ran: started_at..load_ended_at (a run directory from before that key:
    ..ended_at), else the span the intervals cover."""
    ended = info.load_ended_at or info.ended_at
    if info.started_at and ended:
        start, end = epoch_of(info.started_at), epoch_of(ended)
        if end > start:
            return end - start
    if len(intervals):
        span = intervals["start"].max() - intervals["start"].min()
        return span.total_seconds() + float(intervals["interval_s"].iloc[0])
    return 0.0


SERVICE_PERCENTILES = {f"service_{key}": value for key, value in histogram.PERCENTILES.items()}
# summary.json's `overall` names for run.json's open-model totals
ITERATION_KEYS = {"iterations_scheduled": "scheduled", "iterations_started": "started", "iterations_late": "late",
                  "dropped_iterations": "dropped"}  # fmt: skip


def is_open_model(intervals: pd.DataFrame) -> bool:
    """Whether the run was open-model: its rows carry service times beside the intended-start latencies."""
    return "service_hdr" in intervals and bool(intervals["service_hdr"].dropna().astype(str).str.len().gt(0).any())


def service_stats(counts: np.ndarray) -> dict[str, Any]:
    """Open model: the service-time percentiles (send to response) of merged bucket counts."""
    if not counts.any():
        return dict.fromkeys(SERVICE_PERCENTILES)
    values = histogram.percentiles_from_counts(counts, SERVICE_PERCENTILES.values())
    return {key: round(value, 3) for key, value in zip(SERVICE_PERCENTILES, values)}


def summarize(info: RunInfo, intervals: pd.DataFrame, duration_s: float | None = None) -> dict[str, Any]:
    duration = run_duration_s(info, intervals) if duration_s is None else duration_s
    endpoints = []
    open_model = is_open_model(intervals)
    overall_counts = np.zeros(histogram.COUNTS_LEN, dtype=np.int64)  # the endpoints' sum: each histogram decoded once
    service_counts = np.zeros(histogram.COUNTS_LEN, dtype=np.int64)
    if len(intervals):
        for (method, name), rows in intervals.groupby(["method", "name"], sort=True):
            counts = histogram.merged_counts(rows["hdr"])
            overall_counts += counts
            endpoint = {"name": str(name), "method": str(method), **stats_of(rows, duration, counts)}
            if open_model:
                service = histogram.merged_counts(rows["service_hdr"].dropna().astype(str))
                service_counts += service
                endpoint |= service_stats(service)
            endpoints.append(endpoint)
    overall = stats_of(intervals, duration, overall_counts)
    if open_model:
        overall |= service_stats(service_counts)
    if info.open_model:
        overall |= {key: int(info.open_model.get(source, 0)) for key, source in ITERATION_KEYS.items()}
    return {
        "run_id": info.id,
        "status": info.status,
        "duration_s": round(duration, 3),
        **({"latency_from": "intended start"} if open_model else {}),
        "overall": overall,
        "endpoints": endpoints,
    }


def write_summary(run_dir: RunDir) -> dict[str, Any]:
    """Recompute `summary.json` from `run.json` and `intervals.csv`, keeping later analyses' keys."""
    info = run_dir.read_info()
    summary = summarize(info, run_dir.read_intervals())
    try:
        previous = run_dir.read_summary()
    except Exception:
        previous = {}
    if isinstance(previous, dict):
        summary = {**previous, **summary}
    run_dir.write_summary(summary)
    return summary
