"""Abort rules judged while the run goes: `--abort-on 'p95<500ms over 30s after 1m'`.

A local runner or the master hands the watch every interval row it closes (the master's are
the workers' merged histograms) and, at each judgement, the cells of intervals that have ended
but are still open (a master keeps them open for the workers' late reports; judging them too
means a failing run stops a grace period sooner). A rule is judged from its delay on, once its
window has closed, over the last `window_s` seconds of intervals (or all since the start).
The first failing rule is a `Breach`: the plugin stops the run and records it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from loadwise.analysis import histogram
from loadwise.analysis.rundir import epoch_of, iso_utc
from loadwise.analysis.thresholds import OPS, AbortRule, _fmt
from loadwise.engine.recorder import Cell, Recorder


@dataclass
class _Part:
    """One endpoint during one interval, as a rule needs it."""

    method: str
    name: str
    requests: int
    failures: int
    sum_ms: float
    max_ms: float
    buckets: tuple[Any, Any]  # sparse HDR counts: (bucket index, count)
    scenario: str = ""  # a run of several scenarios: the one its requests came from


@dataclass(frozen=True)
class Breach:
    """A rule that failed: what it measured, over which window, when."""

    rule: AbortRule
    actual: float
    window_start: float
    window_end: float
    elapsed_s: float  # from the run's start to the window's end

    def describe(self) -> str:
        t = self.rule.threshold
        return (f"aborted: {self.rule.text!r} failed at {self.elapsed_s:.0f}s ({t.statistic} {_fmt(t.metric, self.actual)} "
                f"over {iso_utc(self.window_start)}..{iso_utc(self.window_end)})")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """run.json's `aborted`."""
        return {"threshold": self.rule.text, "statistic": self.rule.threshold.statistic, "actual": self.actual,
                "limit": self.rule.threshold.limit, "window_start": iso_utc(self.window_start),
                "window_end": iso_utc(self.window_end), "elapsed_s": round(self.elapsed_s, 3)}  # fmt: skip


def _sparse_of(cell: Cell) -> tuple[Any, Any]:
    import numpy as np

    cell.settle()
    if cell.hdr is not None:  # its counts array as it is: no encoding (a master reads many open cells a second)
        dense = np.ctypeslib.as_array(cell.hdr.counts).astype(np.int64)
        index = np.nonzero(dense)[0]
        return index, dense[index]
    index = histogram.indices_of_ms(np.asarray(cell.values, dtype=float)) if len(cell.values) else np.zeros(0, np.int64)
    return index, np.ones(len(index), dtype=np.int64)


class AbortWatch:
    def __init__(self, rules: list[AbortRule], interval_s: float):
        self.rules = rules
        self.interval_s = interval_s
        self.started: float | None = None
        self.closed: dict[float, list[_Part]] = {}  # interval start -> its endpoints
        windows = [r.window_s for r in rules]
        # Rules over the whole run keep every interval (a part per endpoint and interval: a long
        # run's worth is megabytes); sliding windows keep only the longest window's.
        self.keep_s = None if None in windows else max(windows)

    def start(self, at: float) -> None:
        self.started, self.closed = at, {}

    def add_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            start = epoch_of(row["start"])
            buckets = histogram.sparse_counts(row["hdr"]) if row.get("hdr") else _sparse_of(Cell())
            requests = int(row["requests"])
            mean = float(row["mean_ms"]) if row.get("mean_ms") not in ("", None) else 0.0
            self.closed.setdefault(start, []).append(_Part(row["method"], row["name"], requests, int(row["failures"]),
                                                           mean * requests, float(row["max_ms"] or 0.0), buckets,
                                                           str(row.get("scenario") or "")))  # fmt: skip
        if self.keep_s is not None and self.closed:
            newest = max(self.closed)
            for start in [s for s in self.closed if s < newest - self.keep_s - self.interval_s]:
                del self.closed[start]

    def judge(self, now: float, recorders: Iterable[Recorder]) -> Breach | None:
        """The first rule failing now; the recorders' cells not yet closed are read too (only those
        of intervals that have ended)."""
        if self.started is None:
            return None
        parts = {start: list(ps) for start, ps in self.closed.items()}
        for recorder in recorders:
            for (start, method, name), cell in recorder.cells.items():
                if start + self.interval_s <= now:
                    parts.setdefault(start, []).append(_Part(method, name, cell.requests, cell.failures, cell.sum_ms + sum(cell.pending),
                                                             max(cell.max_ms, max(cell.pending, default=0.0)), _sparse_of(cell),
                                                             recorder.scenario))  # fmt: skip
        if not parts:
            return None
        end = max(parts) + self.interval_s
        for rule in self.rules:
            if end - self.started < max(rule.delay_s, rule.window_s or self.interval_s):
                continue
            first = self.started if rule.window_s is None else end - rule.window_s
            chosen = [p for start, ps in parts.items() if start >= first - 1e-6 for p in ps if _matches(rule, p)]
            actual = _statistic(rule, chosen, end - first)
            if actual is not None and not OPS[rule.threshold.op](actual, rule.threshold.limit):
                return Breach(rule, actual, first, end, end - self.started)
        return None


def _matches(rule: AbortRule, part: _Part) -> bool:
    t = rule.threshold
    if t.scenario is not None and part.scenario != t.scenario:
        return False
    return t.endpoint is None or (part.name == t.endpoint and (t.method is None or part.method == t.method))


def _statistic(rule: AbortRule, parts: list[_Part], span_s: float) -> float | None:
    """The rule's statistic over the parts; None where it says nothing (no request in the window)."""
    requests = sum(p.requests for p in parts)
    metric = rule.threshold.metric
    if metric == "requests":
        return float(requests)
    if metric == "failures":
        return float(sum(p.failures for p in parts))
    if metric == "rps":
        return requests / span_s if span_s > 0 else None
    if requests == 0:
        return None
    if metric == "error_rate":
        return sum(p.failures for p in parts) / requests
    if metric == "mean_ms":
        return sum(p.sum_ms for p in parts) / requests
    if metric == "max_ms":
        return max(p.max_ms for p in parts)
    counts = histogram.merge_sparse([p.buckets for p in parts])
    (value,) = histogram.percentiles_from_counts(counts, [histogram.PERCENTILES[metric]], max(p.max_ms for p in parts))
    return None if math.isnan(value) else value
