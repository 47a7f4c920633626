"""Everything a report needs from one run directory, loaded once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loadwise.analysis import histogram
from loadwise.analysis.align import align, preferred_source
from loadwise.analysis.rundir import RunDir, RunDirError, RunInfo, epoch_of
from loadwise.analysis.steps import step_table
from loadwise.analysis.summary import summarize


@dataclass
class RunData:
    run_dir: RunDir
    info: RunInfo
    summary: dict[str, Any]
    intervals: pd.DataFrame
    errors: pd.DataFrame
    exceptions: pd.DataFrame  # task exceptions: count, message, traceback, nodes
    metrics: pd.DataFrame
    timeline: pd.DataFrame  # per interval: client columns, then server series; index: seconds since start
    steps: pd.DataFrame
    iterations: pd.DataFrame  # open model: iteration counts per interval (empty otherwise)
    endpoint_counts: dict[tuple[str, str], np.ndarray]  # merged HDR bucket counts per (method, name)
    overall_counts: np.ndarray

    @property
    def t0(self) -> float:
        if self.info.started_at:
            return epoch_of(self.info.started_at)
        return self.intervals["start"].min().timestamp() if len(self.intervals) else 0.0


def load(path: str) -> RunData:
    """Read a run directory; summary.json is recomputed when missing (e.g. a killed run)."""
    run_dir = RunDir(path)
    if not run_dir.path.is_dir():
        raise RunDirError(f"{path}: no such run directory")
    info = run_dir.read_info()
    intervals = run_dir.read_intervals()
    try:
        summary = run_dir.read_summary()
    except RunDirError:
        summary = summarize(info, intervals).to_dict()
    metrics = run_dir.read_metrics()
    # One decode per stored histogram, shared by the per-endpoint and per-interval merges.
    sparse = [histogram.sparse_counts(text) for text in intervals["hdr"]] if len(intervals) else []
    endpoint_counts: dict[tuple[str, str], np.ndarray] = {}
    if sparse:
        for key, rows in intervals.reset_index(drop=True).groupby(["method", "name"]).indices.items():
            endpoint_counts[(str(key[0]), str(key[1]))] = histogram.merge_sparse([sparse[i] for i in rows])
    overall = histogram.merge_sparse(sparse)
    timeline = align(intervals, metrics, source=preferred_source(metrics), sparse=sparse)
    iterations = run_dir.read_iterations()
    data = RunData(run_dir, info, summary, intervals, run_dir.read_errors(), run_dir.read_exceptions(), metrics, timeline,
                   step_table(info, intervals, iterations), iterations, endpoint_counts, overall)  # fmt: skip
    if len(timeline):
        t0 = data.t0
        # Seconds since the run started; the first interval (aligned to the clock) may open just
        # before it, and is drawn at 0 rather than at a negative time.
        timeline.index = [max(t.timestamp() - t0, 0.0) for t in timeline.index]
    return data
