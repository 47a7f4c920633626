"""Steady-state steps of a `step` run (users) or a `step-rate` run (arrival rate): one row per
step, ramp transients dropped. A step-rate row also has the rate offered to the target beside
the rate achieved, and the service time that Little's law turns into concurrency."""

from __future__ import annotations


import pandas as pd

from loadwise.analysis import histogram
from loadwise.analysis.rundir import RunInfo, epoch_of

STEP_COLUMNS = ["step", "users", "intervals", "requests", "rps", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "error_rate",
                "offered_rps", "service_mean_ms", "generator_late_share"]  # fmt: skip
STEP_SHAPES = ("step", "step-rate")


def has_offered_rates(steps: pd.DataFrame) -> bool:
    """Whether the steps are a step-rate run's: each with the rate it was offered."""
    return "offered_rps" in steps and bool(steps["offered_rps"].notna().all())


def step_bounds(info: RunInfo) -> list[tuple[float, float]]:
    """(start, end) in epoch seconds of each step of a step run; [] for any other run."""
    params = info.shape_params or {}
    if info.shape not in STEP_SHAPES or not info.started_at or not params.get("steps"):
        return []
    steps, t0 = int(params["steps"]), epoch_of(info.started_at)
    step_s = float(params["duration_s"]) / steps
    return [(t0 + k * step_s, t0 + (k + 1) * step_s) for k in range(steps)]


def step_table(info: RunInfo, intervals: pd.DataFrame, iterations: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per step: its users and the throughput, percentiles and error rate of its steady part.
    A step-rate run's `users` is the mean user pool, and `offered_rps` the arrivals scheduled
    per second (`iterations`) times the requests an iteration made over the run.

    A step holds its users for `duration_s / steps` seconds from the run's start. Only
    intervals wholly inside a step count, and the first of them is dropped when the step
    has three or more: it holds the spawn and warm-up of the new users.
    """
    bounds = step_bounds(info)
    if not bounds or intervals.empty:
        return pd.DataFrame(columns=STEP_COLUMNS)
    steps, users = len(bounds), int(info.shape_params["users"])
    interval_s = float(intervals["interval_s"].iloc[0])
    starts = intervals["start"].map(pd.Timestamp.timestamp)
    open_model = info.shape == "step-rate"
    per_iteration, scheduled_at, generator_late_at = 1.0, None, None
    if open_model and iterations is not None and len(iterations):
        started = float(iterations["started"].sum())
        per_iteration = float(intervals["requests"].sum()) / started if started else 1.0
        by_start = iterations.set_index(iterations["start"].map(pd.Timestamp.timestamp))
        scheduled_at, generator_late_at = by_start["scheduled"], by_start["generator_late"]
    rows = []
    for k, (lo, hi) in enumerate(bounds):
        inside = intervals[(starts >= lo) & (starts + interval_s <= hi)]
        grid = sorted(inside["start"].unique())
        if len(grid) >= 3:
            inside = inside[inside["start"] != grid[0]]
            grid = grid[1:]
        if not grid:
            continue
        requests = int(inside["requests"].sum())
        p50, p95, p99 = histogram.percentiles_from_counts(histogram.merged_counts(inside["hdr"]), (50, 95, 99),
                                                          float(inside["max_ms"].max()))  # fmt: skip
        grid_s = [g.timestamp() for g in grid]
        if open_model:  # the pool's mean size, and what was offered: the plan's arrivals in the same intervals
            pool = pd.to_numeric(inside.drop_duplicates("start")["users"], errors="coerce").mean()
            offered = (float(scheduled_at.reindex(grid_s).fillna(0).sum()) / (len(grid) * interval_s) * per_iteration
                       if scheduled_at is not None else float(info.shape_params["rate"]) * (k + 1) / steps * per_iteration)  # fmt: skip
        service = histogram.merged_counts(inside["service_hdr"].dropna().astype(str)) if open_model else None
        late_share = float("nan")  # the arrivals the generator itself scheduled late: its own limit, not the target's
        if scheduled_at is not None and generator_late_at is not None:
            due = float(scheduled_at.reindex(grid_s).fillna(0).sum())
            late_share = float(generator_late_at.reindex(grid_s).fillna(0).sum()) / due if due else float("nan")
        rows.append({
            "step": k + 1, "users": float(pool) if open_model else round(users * (k + 1) / steps),
            "intervals": len(grid), "requests": requests,
            "rps": requests / (len(grid) * interval_s),
            "mean_ms": float((inside["mean_ms"] * inside["requests"]).sum() / requests) if requests else float("nan"),
            "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
            "error_rate": int(inside["failures"].sum()) / requests if requests else float("nan"),
            "offered_rps": offered if open_model else float("nan"),
            "service_mean_ms": histogram.mean_from_counts(service) if service is not None else float("nan"),
            "generator_late_share": late_share,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=STEP_COLUMNS)
