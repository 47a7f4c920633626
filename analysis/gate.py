"""The CI gate's verdict: thresholds, baseline comparison and history, in one result.

`judge` is the gate's one entry point (the CLI parses, calls it, and prints the result);
`calibrate` measures the false-alarm rate of the same settings on same-build runs.
"""

from __future__ import annotations

import glob
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loadwise.analysis.changepoints import newest_point
from loadwise.analysis.gate_settings import GateSettings
from loadwise.analysis.regression import (
    MIN_REQUESTS, NOT_JUDGED, RATE_NOT_JUDGED, REGRESSION, Comparison, compare_runs, saturated,
)  # fmt: skip
from loadwise.analysis.rundir import STATUS_COMPLETED, RunDir, RunInfo
from loadwise.analysis.summary import RunSummary
from loadwise.analysis.thresholds import Threshold, ThresholdResult, evaluate
from loadwise.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from loadwise.analysis.history import History

HISTORY_METRICS = {"p95_ms": True, "p99_ms": True, "error_rate": True, "rps": False}  # metric -> higher is worse
MIN_HISTORY = 5  # runs in the current regime before the history can fail a gate


@dataclass
class HistoryCheck:
    endpoint: str
    metric: str
    runs: int
    newest: float
    regime_mean: float | None
    limit: float | None
    change: float | None
    decision: str  # "regression", "no change", "not enough history" or "not judged"
    reason: str = ""  # why it was not judged

    def describe(self) -> str:
        if self.decision == "not enough history":
            return f"{self.endpoint} {self.metric}: {self.runs} comparable run(s), need {MIN_HISTORY}"
        if self.decision == NOT_JUDGED:
            return f"{self.endpoint} {self.metric}: not judged: {self.reason}"
        change = f"{self.change:+.1%}" if self.change is not None else "–"
        return (f"{self.endpoint} {self.metric}: {self.newest:.4g} against the current regime's mean "
                f"{self.regime_mean:.4g} (limit {self.limit:.4g}, {change}): {self.decision}")  # fmt: skip


def history_checks(series: dict[tuple[str, str], list[float | None]], settings: GateSettings | None = None,
                   judge_rate: bool = True, requests: dict[str, int] | None = None) -> list[HistoryCheck]:  # fmt: skip
    """One check per (endpoint, metric) series, newest value last. As in the baseline
    comparison, the request rate is judged only when `judge_rate` (the run was saturated), and
    a metric only when the newest run's endpoint had enough `requests` for it (MIN_REQUESTS)."""
    settings = settings or GateSettings()
    min_effect, min_delta_ms = settings.min_effect, settings.min_delta
    checks = []
    for (endpoint, metric), values in series.items():
        clean = [v for v in values[:-1] if v is not None] + [values[-1]]
        if clean[-1] is None:
            continue
        if metric == "rps" and not judge_rate:
            checks.append(HistoryCheck(endpoint, metric, len(clean) - 1, float(clean[-1]), None, None, None, NOT_JUDGED,
                                       RATE_NOT_JUDGED))  # fmt: skip
            continue
        n = (requests or {}).get(endpoint)
        if n is not None and n < MIN_REQUESTS.get(metric, 0):
            checks.append(HistoryCheck(endpoint, metric, len(clean) - 1, float(clean[-1]), None, None, None, NOT_JUDGED,
                                       f"too few requests (n={n}, needs {MIN_REQUESTS[metric]})"))  # fmt: skip
            continue
        if len(clean) - 1 < MIN_HISTORY:
            checks.append(HistoryCheck(endpoint, metric, len(clean) - 1, float(clean[-1]), None, None, None, "not enough history"))
            continue
        point = newest_point(np.array(clean, dtype=float), HISTORY_METRICS.get(metric, True), min_effect)
        small = metric.endswith("_ms") and abs(point.value - point.regime_mean) < min_delta_ms
        if point.regime_size < MIN_HISTORY:
            decision = "not enough history"
        else:
            decision = REGRESSION if point.worse_regime and not small else "no change"
        checks.append(HistoryCheck(endpoint, metric, len(clean) - 1, point.value, point.regime_mean,
                                   None if point.limit is None else float(point.limit), point.change, decision))  # fmt: skip
    return checks


@dataclass
class GateResult:
    run_id: str
    window: str
    thresholds: list[ThresholdResult] = field(default_factory=list)
    baseline_id: str | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    history: list[HistoryCheck] = field(default_factory=list)
    run_problem: str | None = None  # the run itself did not complete

    @property
    def failures(self) -> list[str]:
        out = [self.run_problem] if self.run_problem else []
        out += [r.describe() for r in self.thresholds if not r.passed]
        out += [c.describe() for c in self.comparisons if c.decision == REGRESSION]
        out += [h.describe() for h in self.history if h.decision == REGRESSION]
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "passed": self.passed,
            "window": self.window,
            "failures": self.failures,
            "thresholds": [{"threshold": r.threshold.text, "actual": r.actual, "passed": r.passed} for r in self.thresholds],
            "baseline": self.baseline_id,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "history": [asdict(h) for h in self.history],
        }

    def report_block(self) -> dict[str, Any]:
        """The report's "regression" slot (see reports.sections)."""
        tables = []
        if self.comparisons:
            many = "," in (self.baseline_id or "")
            tables.append({
                "title": f"Against baseline{'s' if many else ''} {self.baseline_id} "
                         f"({'their run-to-run spread' if many else 'one run: a between-run allowance and the block bootstrap'})",
                "columns": ["endpoint", "metric", "baseline", "this run", "change", f"{self.comparisons[0].confidence:.0%} interval",
                            "judged against", "decision"],
                "rows": [[c.endpoint, c.metric, c.value_text(c.baseline), c.value_text(c.current), c.change_text(c.change),
                          "–" if c.low is None else f"[{c.change_text(c.low)}, {c.change_text(c.high)}]", c.noise, c.decision]
                         for c in self.comparisons],
            })  # fmt: skip
        if self.history:
            tables.append({
                "title": "Against the run history (E-Divisive regimes)",
                "columns": ["endpoint", "metric", "runs", "this run", "regime mean", "limit", "decision"],
                "rows": [[h.endpoint, h.metric, h.runs, f"{h.newest:.4g}", "–" if h.regime_mean is None else f"{h.regime_mean:.4g}",
                          "–" if h.limit is None else f"{h.limit:.4g}", h.decision] for h in self.history],
            })  # fmt: skip
        verdict = "PASS" if self.passed else "FAIL"
        headline = f"Gate {verdict}: " + ("; ".join(self.failures[:2]) if self.failures else "no regression, every threshold met")
        return {"headline": headline, "tables": tables, "notes": [f"window: {self.window}"]}



# -- the entry points ---------------------------------------------------------------------


@dataclass
class JudgedRun:
    """One run as the gate sees it: its run.json and its intervals inside the judged window."""

    path: str
    info: RunInfo
    intervals: pd.DataFrame

    @property
    def summary(self) -> RunSummary:
        from loadwise.analysis.windows import window_summary

        return window_summary(self.info, self.intervals)


def load_run(path: str, settings: GateSettings) -> JudgedRun:
    """The run directory at `path`, cut to the settings' window; UsageError naming it when it
    is missing, has no requests, or leaves nothing in the window."""
    from loadwise.analysis import windows

    run_dir = RunDir(path)
    if not run_dir.path.is_dir():
        raise UsageError(f"{path}: no such run directory")
    info, intervals = run_dir.read_info(), run_dir.read_intervals()
    if intervals.empty or intervals["requests"].sum() == 0:
        raise UsageError(f"{path}: the run has no requests: nothing to judge")
    try:
        chosen = windows.select(info, intervals, settings.window, settings.warmup)
    except windows.WindowError as exc:
        raise UsageError(f"{path}: {exc}") from None
    if chosen.empty:
        raise UsageError(f"{path}: no interval left in the {settings.window} window after a {settings.warmup:g}s warm-up")
    return JudgedRun(path, info, chosen)


def baseline_paths(given: list[str], run: str) -> list[str]:
    """Run directories from --baseline values (a run, a directory of runs, or a glob), the
    judged run itself left out (a glob may match it); UsageError when none is left."""
    paths: list[str] = []
    for item in given:
        if any(ch in item for ch in "*?["):
            matches = sorted(glob.glob(item))
            if not matches:
                raise UsageError(f"--baseline {item!r} matches no run directory")
            paths += matches
        elif Path(item).is_dir() and not (Path(item) / "run.json").exists():
            inside = sorted(str(p.parent) for p in Path(item).glob("*/run.json"))
            if not inside:
                raise UsageError(f"--baseline {item}: neither a run directory nor a directory of runs")
            paths += inside
        else:
            paths.append(item)
    own = Path(run).resolve() if run else None
    others = [p for p in dict.fromkeys(paths) if Path(p).resolve() != own]
    if not others:
        raise UsageError(f"--baseline names only {run} itself: a run is not its own baseline (give an earlier run)")
    return others


def history_keys(summary: RunSummary) -> list[tuple[str, str]]:
    """The (endpoint, metric) series the history judges: the run's overall metrics, and each endpoint's p95."""
    keys = [("overall", metric) for metric in HISTORY_METRICS]
    return keys + [(f"{e.method} {e.name}", "p95_ms") for e in summary.endpoints]


def judge(run: JudgedRun, settings: GateSettings, thresholds: list[Threshold] | None = None,
          baselines: list[JudgedRun] | None = None, history: History | None = None, force: bool = False,
          history_limit: int = 30) -> GateResult:  # fmt: skip
    """The gate's verdict on `run`: its thresholds, against `baselines` (block bootstrap for
    one, their run-to-run spread for several) and against `history` (the run is added to it
    first, then judged against the current regime of the comparable runs before it)."""
    info, summary = run.info, run.summary
    label = settings.window + (f", after a {settings.warmup:g}s warm-up" if settings.warmup else "")
    result = GateResult(run_id=info.id, window=label, thresholds=evaluate(thresholds or [], summary))
    if info.status != STATUS_COMPLETED:
        result.run_problem = f"the run is {info.status}" + (f": {info.status_reason}" if info.status_reason else "")
    if baselines:
        for base in baselines:
            if not force and (base.info.scenario, base.info.shape) != (info.scenario, info.shape):
                raise UsageError(f"baseline {base.info.id} ran {base.info.scenario}/{base.info.shape}, this run "
                                 f"{info.scenario}/{info.shape}: not comparable (use --force to compare anyway)")  # fmt: skip
        result.baseline_id = ", ".join(b.info.id for b in baselines)
        result.comparisons = compare_runs([b.intervals for b in baselines], run.intervals, settings)
    if history is not None:
        history.add(info, summary.to_dict())
        ids = [r.run_id for r in history.runs(info.scenario, info.shape or "", history_limit)]
        series = {key: history.series(ids, *key) for key in history_keys(summary)}
        requests = {"overall": summary.overall.requests} | {f"{e.method} {e.name}": e.requests for e in summary.endpoints}
        result.history = history_checks(series, settings, judge_rate=bool(saturated(run.intervals)), requests=requests)
    return result


@dataclass
class Calibration:
    """What the gate's settings do on same-build runs: every ordered pair judged as baseline and run."""

    runs: int
    pairs: int
    false_alarms: int  # pairs the gate failed
    false_alarms_by_metric: dict[str, int]  # "endpoint metric" -> pairs it failed
    largest_same_build_change: dict[str, float]  # "endpoint metric" -> the largest |change| seen

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarms / self.pairs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"false_alarm_rate": self.false_alarm_rate}


def calibrate(runs: list[JudgedRun], settings: GateSettings) -> Calibration:
    """All ordered pairs of same-build runs through the gate's own comparison: the false-alarm
    rate of these settings, and the smallest change each metric can be told apart from noise by."""
    if len(runs) < 3:
        raise UsageError("--calibrate needs at least 3 same-build runs")
    alarms, pairs = 0, 0
    alarmed: dict[str, int] = {}
    changes: dict[str, list[float]] = {}
    for i, base in enumerate(runs):
        for j, current in enumerate(runs):
            if i == j:
                continue
            pairs += 1
            found = compare_runs(base.intervals, current.intervals, settings)
            alarms += any(c.decision == REGRESSION for c in found)
            for c in found:
                key = f"{c.endpoint} {c.metric}"
                if c.decision == REGRESSION:
                    alarmed[key] = alarmed.get(key, 0) + 1
                if c.decision != NOT_JUDGED and c.change is not None:
                    changes.setdefault(key, []).append(abs(c.change))
    return Calibration(len(runs), pairs, alarms, alarmed, {key: max(v) for key, v in sorted(changes.items())})
