"""Which intervals a verdict looks at: the whole run or its last step, after a warm-up."""

from __future__ import annotations


import pandas as pd

from loadwise.analysis.rundir import RunInfo, epoch_of
from loadwise.analysis.steps import step_bounds
from loadwise.analysis.summary import RunSummary, summarize
from loadwise.errors import LoadwiseError

WINDOWS = ("all", "last-step")


class WindowError(LoadwiseError, ValueError):
    pass


def select(info: RunInfo, intervals: pd.DataFrame, window: str = "all", warmup_s: float = 0.0) -> pd.DataFrame:
    """Intervals that start at least `warmup_s` after the run started and, for `last-step`,
    lie wholly inside the last step of a step run."""
    if window not in WINDOWS:
        raise WindowError(f"unknown window {window!r}; use one of {', '.join(WINDOWS)}")
    if intervals.empty or not info.started_at:
        return intervals
    t0 = epoch_of(info.started_at)
    starts = intervals["start"].map(pd.Timestamp.timestamp)
    interval_s = float(intervals["interval_s"].iloc[0])
    # Intervals are aligned to the wall clock, so the first one usually starts before the
    # run did: it holds the run's first requests and belongs to the whole-run window.
    keep = starts + interval_s > t0 if warmup_s <= 0 else starts >= t0 + warmup_s
    if window == "last-step":
        bounds = step_bounds(info)
        if not bounds:
            raise WindowError(f"--window last-step needs a step run (this run's shape is {info.shape or 'none'})")
        last_start, end = bounds[-1]
        keep &= (starts >= last_start) & (starts + interval_s <= end + interval_s / 2)
    return intervals[keep]


def window_summary(info: RunInfo, intervals: pd.DataFrame) -> RunSummary:
    """summary.json's statistics over a window: throughput over the window's own length."""
    duration = intervals["start"].nunique() * float(intervals["interval_s"].iloc[0]) if len(intervals) else 0.0
    return summarize(info, intervals, duration_s=duration)
