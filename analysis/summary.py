"""Per-endpoint and overall statistics of a run, from its stored interval histograms."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from loadwise.analysis import histogram
from loadwise.analysis.rundir import RunDir, RunInfo, epoch_of, scenario_of_rows


def _finite(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


SERVICE_KEYS = ("service_p50_ms", "service_p90_ms", "service_p95_ms", "service_p99_ms")
ITERATION_FIELDS = ("iterations_scheduled", "iterations_started", "iterations_late", "dropped_iterations")
CHECK_FIELDS = ("checks_passed", "checks_failed", "checks")


@dataclass
class Stats:
    """The statistics of a set of requests (the run's, or one endpoint's), as summary.json names them.
    Latencies in ms; under the open model measured from each request's intended start, and the
    service_* fields from its send (present only then)."""

    requests: int = 0
    failures: int = 0
    rps: float | None = None
    error_rate: float | None = None
    mean_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    service_p50_ms: float | None = None
    service_p90_ms: float | None = None
    service_p95_ms: float | None = None
    service_p99_ms: float | None = None
    # the run's own (overall) under the open model: the iterations planned, started, started late, dropped
    iterations_scheduled: int | None = None
    iterations_started: int | None = None
    iterations_late: int | None = None
    dropped_iterations: int | None = None
    # loadwise.check(): the named checks passed and failed, and the passing share (None: no check ran)
    checks_passed: int | None = None
    checks_failed: int | None = None
    checks: float | None = None

    def metric(self, name: str) -> float | None:
        """A statistic by its summary.json name (`p95_ms`, `dropped_iterations` ...): how thresholds name them."""
        return getattr(self, name, None) if name in _STAT_NAMES else None

    def to_dict(self, open_model: bool = False) -> dict[str, Any]:
        out = asdict(self)
        for key in SERVICE_KEYS if not open_model else ():
            del out[key]
        for key in ITERATION_FIELDS + CHECK_FIELDS:
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Stats:
        """From summary.json (outside input): unknown keys ignored, a value of the wrong type read as missing."""
        return cls(**_known(cls, data))


@dataclass
class EndpointStats(Stats):
    method: str = ""
    name: str = ""

    def to_dict(self, open_model: bool = False) -> dict[str, Any]:
        stats = super().to_dict(open_model)
        return {"name": stats.pop("name"), "method": stats.pop("method"), **stats}


_STAT_NAMES = frozenset(f.name for f in fields(Stats))


def _known(cls: type, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {}
    out = {}
    for f in fields(cls):
        value = data.get(f.name)
        if f.name in ("method", "name"):
            if isinstance(value, str):
                out[f.name] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f.name] = value
    return out


def find_endpoint(endpoints: list[EndpointStats], name: str, method: str | None = None) -> EndpointStats | None:
    """The endpoint of that name (and method, when given)."""
    return next((e for e in endpoints if e.name == name and method in (None, e.method)), None)


@dataclass
class ScenarioSummary:
    """One scenario of a run of several: its own statistics, over the seconds it ran (its start to
    its end, or to the run's end if that came first), overall and per endpoint."""

    name: str
    start_s: float
    duration_s: float
    overall: Stats
    endpoints: list[EndpointStats] = field(default_factory=list)
    shape: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    latency_from: str | None = None

    def endpoint(self, name: str, method: str | None = None) -> EndpointStats | None:
        return find_endpoint(self.endpoints, name, method)

    def to_dict(self) -> dict[str, Any]:
        open_model = self.latency_from is not None
        return {"name": self.name, "shape": self.shape, "start_s": self.start_s, "duration_s": self.duration_s,
                "tags": dict(self.tags), **({"latency_from": self.latency_from} if self.latency_from else {}),
                "overall": self.overall.to_dict(open_model), "endpoints": [e.to_dict(open_model) for e in self.endpoints]}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> ScenarioSummary:
        data = data if isinstance(data, dict) else {}
        number = lambda key: float(data[key]) if isinstance(data.get(key), (int, float)) and not isinstance(data.get(key), bool) else 0.0  # noqa: E731
        endpoints = data.get("endpoints") if isinstance(data.get("endpoints"), list) else []
        tags = data.get("tags") if isinstance(data.get("tags"), dict) else {}
        return cls(str(data.get("name", "")), number("start_s"), number("duration_s"), Stats.from_dict(data.get("overall")),
                   [EndpointStats.from_dict(e) for e in endpoints if isinstance(e, dict)], str(data.get("shape", "")),
                   {str(k): str(v) for k, v in tags.items()},
                   data.get("latency_from") if isinstance(data.get("latency_from"), str) else None)  # fmt: skip


@dataclass
class RunSummary:
    """summary.json's statistics: the run's overall and each endpoint's, over the run's duration.
    (summary.json also holds what later commands add: capacity, gate, hpa ... under their own keys.)"""

    run_id: str
    status: str
    duration_s: float
    overall: Stats
    endpoints: list[EndpointStats] = field(default_factory=list)
    latency_from: str | None = None  # "intended start" under the open model
    scenarios: list[ScenarioSummary] = field(default_factory=list)  # a run of several scenarios: each one's

    @property
    def open_model(self) -> bool:
        return self.latency_from is not None

    def scenario(self, name: str) -> ScenarioSummary | None:
        return next((s for s in self.scenarios if s.name == name), None)

    def endpoint(self, name: str, method: str | None = None) -> EndpointStats | None:
        return find_endpoint(self.endpoints, name, method)

    def to_dict(self) -> dict[str, Any]:
        """summary.json's keys, as they have always been."""
        return {
            "run_id": self.run_id, "status": self.status, "duration_s": self.duration_s,
            **({"latency_from": self.latency_from} if self.latency_from else {}),
            "overall": self.overall.to_dict(self.open_model),
            "endpoints": [e.to_dict(self.open_model) for e in self.endpoints],
            **({"scenarios": [s.to_dict() for s in self.scenarios]} if self.scenarios else {}),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> RunSummary:
        """From a stored summary.json (outside input: whatever is missing or malformed reads as absent)."""
        data = data if isinstance(data, dict) else {}
        endpoints = data.get("endpoints") if isinstance(data.get("endpoints"), list) else []
        duration = data.get("duration_s")
        scenarios = data.get("scenarios") if isinstance(data.get("scenarios"), list) else []
        return cls(str(data.get("run_id", "")), str(data.get("status", "")),
                   float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else 0.0,
                   Stats.from_dict(data.get("overall")), [EndpointStats.from_dict(e) for e in endpoints if isinstance(e, dict)],
                   data.get("latency_from") if isinstance(data.get("latency_from"), str) else None,
                   [ScenarioSummary.from_dict(s) for s in scenarios if isinstance(s, dict)])  # fmt: skip


def stats_of(rows: pd.DataFrame, duration_s: float, counts: np.ndarray | None = None) -> Stats:
    """Statistics of a set of interval rows, percentiles from their merged histograms
    (`counts`, when the caller has merged them already)."""
    requests = int(rows["requests"].sum()) if len(rows) else 0
    failures = int(rows["failures"].sum()) if len(rows) else 0
    if counts is None:
        counts = histogram.merged_counts(rows["hdr"])
    slowest = float(rows["max_ms"].max()) if requests else None
    pct = dict(zip(histogram.PERCENTILES, histogram.percentiles_from_counts(counts, histogram.PERCENTILES.values(), slowest)))
    mean = float((rows["mean_ms"] * rows["requests"]).sum() / requests) if requests else float("nan")
    latencies = {"mean_ms": mean, **pct, "max_ms": float(rows["max_ms"].max()) if requests else float("nan")}
    return Stats(requests, failures, round(requests / duration_s, 3) if duration_s > 0 else None,
                 round(failures / requests, 6) if requests else None,
                 **{key: _finite(round(value, 3)) for key, value in latencies.items()})  # fmt: skip


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
ITERATION_KEYS = dict(zip(ITERATION_FIELDS, ("scheduled", "started", "late", "dropped")))


def is_open_model(intervals: pd.DataFrame) -> bool:
    """Whether the run was open-model: its rows carry service times beside the intended-start latencies."""
    return "service_hdr" in intervals and bool(intervals["service_hdr"].dropna().astype(str).str.len().gt(0).any())


def service_stats(counts: np.ndarray) -> dict[str, float | None]:
    """Open model: the service-time percentiles (send to response) of merged bucket counts."""
    if not counts.any():
        return dict.fromkeys(SERVICE_PERCENTILES)
    values = histogram.percentiles_from_counts(counts, SERVICE_PERCENTILES.values())
    return {key: round(value, 3) for key, value in zip(SERVICE_PERCENTILES, values)}


def summarize(info: RunInfo, intervals: pd.DataFrame, duration_s: float | None = None) -> RunSummary:
    duration = run_duration_s(info, intervals) if duration_s is None else duration_s
    # A run of several scenarios is open-model overall only if all are: else its closed scenarios have no service times.
    every_rate = all(r.get("open_model") for r in info.scenarios) if info.scenarios else None
    overall, endpoints, open_model = _statistics(intervals, duration, every_rate)
    overall = _with_iterations(overall, info.open_model or _iteration_totals(info.scenarios))
    if info.checks:
        overall, endpoints = _with_checks(overall, info.checks), [_with_checks(e, info.checks, e) for e in endpoints]
    scenarios = [_scenario_summary(record, intervals, duration) for record in info.scenarios]
    return RunSummary(info.id, info.status, round(duration, 3), overall, endpoints,
                      "intended start" if open_model else None, scenarios)  # fmt: skip


def _with_iterations(overall: Stats, totals: dict[str, Any]) -> Stats:
    """`overall` with run.json's open-model iteration totals (unchanged when there are none)."""
    if not totals:
        return overall
    return Stats(**asdict(overall) | {key: int(totals.get(source, 0)) for key, source in ITERATION_KEYS.items()})


def _iteration_totals(records: list[dict[str, Any]]) -> dict[str, int]:
    """The rate scenarios' iteration counts added up (none: no rate scenario)."""
    totals: dict[str, int] = {}
    for record in records:
        for key, value in (record.get("open_model") or {}).items():
            if key in ITERATION_KEYS.values():
                totals[key] = totals.get(key, 0) + int(value)
    return totals


def _scenario_summary(record: dict[str, Any], intervals: pd.DataFrame, run_s: float) -> ScenarioSummary:
    """One scenario's statistics, over the seconds it was planned to run (within the run)."""
    name = str(record.get("name", ""))
    start_s = float(record.get("start_s") or 0.0)
    planned = float((record.get("params") or {}).get("duration_s") or 0.0)
    duration = max(min(start_s + planned, run_s) - start_s, 0.0)
    rows = intervals[scenario_of_rows(intervals) == name] if len(intervals) else intervals
    overall, endpoints, open_model = _statistics(rows, duration)
    overall = _with_iterations(overall, record.get("open_model") or {})
    return ScenarioSummary(name, start_s, round(duration, 3), overall, endpoints, str(record.get("shape", "")),
                           dict(record.get("tags") or {}), "intended start" if open_model else None)  # fmt: skip


def _statistics(intervals: pd.DataFrame, duration: float, open_model: bool | None = None) -> tuple[Stats, list[EndpointStats], bool]:
    """Overall and per-endpoint statistics of a set of interval rows; whether they are open-model
    rows (None: as their service times say)."""
    endpoints = []
    open_model = is_open_model(intervals) if open_model is None else open_model and is_open_model(intervals)
    overall_counts = np.zeros(histogram.COUNTS_LEN, dtype=np.int64)  # the endpoints' sum: each histogram decoded once
    service_counts = np.zeros(histogram.COUNTS_LEN, dtype=np.int64)
    if len(intervals):
        for (method, name), rows in intervals.groupby(["method", "name"], sort=True):
            counts = histogram.merged_counts(rows["hdr"])
            overall_counts += counts
            service = {}
            if open_model:
                service_only = histogram.merged_counts(rows["service_hdr"].dropna().astype(str))
                service_counts += service_only
                service = service_stats(service_only)
            endpoints.append(EndpointStats(**asdict(stats_of(rows, duration, counts)) | service, method=str(method), name=str(name)))
    overall = stats_of(intervals, duration, overall_counts)
    if open_model:
        overall = Stats(**asdict(overall) | service_stats(service_counts))
    return overall, endpoints, open_model


def check_counts(records: list[dict[str, Any]], endpoint: EndpointStats | None = None) -> tuple[int, int]:
    """Passes and fails of run.json's `checks` (those of one endpoint, when given)."""
    passes = fails = 0
    for r in records:
        if endpoint is None or (r.get("name") == endpoint.name and r.get("method") in ("", endpoint.method)):
            passes, fails = passes + int(r.get("passes") or 0), fails + int(r.get("fails") or 0)
    return passes, fails


def _with_checks(stats: Any, records: list[dict[str, Any]], endpoint: EndpointStats | None = None) -> Any:
    passes, fails = check_counts(records, endpoint)
    if passes + fails == 0:
        return stats
    return type(stats)(**asdict(stats) | {"checks_passed": passes, "checks_failed": fails,
                                          "checks": round(passes / (passes + fails), 6)})  # fmt: skip


def write_summary(run_dir: RunDir) -> dict[str, Any]:
    """Recompute `summary.json` from `run.json` and `intervals.csv`, keeping later analyses' keys."""
    info = run_dir.read_info()
    summary = summarize(info, run_dir.read_intervals()).to_dict()
    try:
        previous = run_dir.read_summary()
    except Exception:
        previous = {}
    if isinstance(previous, dict):
        summary = {**previous, **summary}
    run_dir.write_summary(summary)
    return summary
