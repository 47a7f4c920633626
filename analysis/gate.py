"""The CI gate's verdict: thresholds, baseline comparison and history, in one result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from loadwise.analysis.changepoints import newest_point
from loadwise.analysis.regression import MIN_DELTA_MS, MIN_REQUESTS, NOT_JUDGED, RATE_NOT_JUDGED, REGRESSION, Comparison
from loadwise.analysis.thresholds import ThresholdResult

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


def history_checks(series: dict[tuple[str, str], list[float | None]], min_effect: float,
                   min_delta_ms: float = MIN_DELTA_MS, judge_rate: bool = True,
                   requests: dict[str, int] | None = None) -> list[HistoryCheck]:  # fmt: skip
    """One check per (endpoint, metric) series, newest value last. As in the baseline
    comparison, the request rate is judged only when `judge_rate` (the run was saturated), and
    a metric only when the newest run's endpoint had enough `requests` for it (MIN_REQUESTS)."""
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

