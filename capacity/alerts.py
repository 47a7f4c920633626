"""Prometheus alert rules whose thresholds are a run's measured capacity and its SLOs.

Pure: the run's info, its overall statistics, its steady steps and its SLOs (parsed
thresholds) in; one rule group (a dict ready for YAML) with what was made and what was
left out, out. The
rules read the metrics the collector's default queries read (`analysis.metrics`), so a
service that a run could measure can be alerted on with the same names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from loadwise.analysis.metrics import DURATION_BUCKET, REQUESTS
from loadwise.analysis.rundir import STATUS_COMPLETED, RunInfo
from loadwise.analysis.thresholds import Threshold
from loadwise.capacity.models import CapacityError
from loadwise.capacity.planning import slo_capacity
from loadwise.capacity.settings import AlertSettings

LATENCY_STATISTICS = ("p50", "p90", "p95", "p99")
STEP_STATISTICS = ("p50", "p95", "p99")  # the percentiles analysis.steps keeps per step
ERROR_STATUS = 'status=~"5.."'  # what the collector counts as a server error

_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_MATCHER = r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*'
_MATCHERS = re.compile(rf"(?:{_MATCHER}(?:,{_MATCHER})*,?\s*)?")
_ONE_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*')
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


class AlertError(CapacityError):
    """Bad input for the alert rules (a selector, a label, a fraction), or nothing to alert on."""


def check_settings(settings: AlertSettings) -> list[str]:
    """The selector's matchers, normalized; AlertError names the bad setting."""
    if not _LABEL.fullmatch(settings.pod_label):
        raise AlertError(f"--pod-label {settings.pod_label!r} is not a Prometheus label name")
    if not 0 < settings.capacity_fraction <= 1:
        raise AlertError(f"--capacity-fraction {settings.capacity_fraction:g} must be above 0 and at most 100%")
    if not (isinstance(settings.replicas_in_run, int) and settings.replicas_in_run >= 1):
        raise AlertError(f"replicas in the run {settings.replicas_in_run!r} must be a positive integer")
    for name in ("rate_window", "capacity_for", "slo_for"):
        if not _DURATION.match(getattr(settings, name)):
            raise AlertError(f"{name} {getattr(settings, name)!r} is not a PromQL duration (e.g. 5m)")
    return parse_selector(settings.selector)




def parse_selector(text: str) -> list[str]:
    """`{job="shop",namespace=~"prod|canary"}` (braces optional) as normalized matchers."""
    inner = text.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1]
    if not _MATCHERS.fullmatch(inner):
        raise AlertError(f"--selector {text!r}: expected label matchers such as '{{job=\"shop\"}}'")
    return [f"{name}{op}{value}" for name, op, value in _ONE_MATCHER.findall(inner)]


@dataclass
class Capacity:
    """The SLO-bound capacity a run measured: the highest throughput meeting its latency SLOs."""

    run_id: str
    slo: str  # the SLO that bounds it, as written
    total_rps: float  # what the replicas in the run served together
    replicas: int
    lower_bound: bool  # every step met the SLO: the true capacity is higher
    note: str

    @property
    def per_pod_rps(self) -> float:
        return self.total_rps / self.replicas


@dataclass
class RuleGroup:
    name: str
    rules: list[dict[str, Any]]
    made: list[str]  # one line per rule, for people
    notes: list[str] = field(default_factory=list)  # what could not be made, and why
    capacity: Capacity | None = None

    def document(self) -> dict[str, Any]:
        return {"groups": [{"name": self.name, "rules": self.rules}]}


def _number(value: float) -> str:
    """A number as PromQL and annotations write it: 0.3, 432, 432.125 (no 432.0)."""
    text = repr(float(f"{value:.6g}"))
    return text[:-2] if text.endswith(".0") else text


def _shown(value: float) -> str:
    return f"{value:,.1f}".removesuffix(".0")


def _percent(fraction: float) -> str:
    return f"{_shown(100 * fraction)}%"


def _selector(matchers: list[str], *extra: str) -> str:
    return "{" + ",".join([*matchers, *extra]) + "}"


def _alert_above(t: Threshold) -> str:
    """The comparison that breaks an upper-bound SLO: `p95<300ms` is broken at 300 ms, `<=` only above."""
    return ">=" if t.op == "<" else ">"


def usable_slos(slos: list[Threshold]) -> tuple[list[Threshold], list[str]]:
    """The overall latency and error-rate upper bounds, one per statistic (the tightest)."""
    kept: dict[str, Threshold] = {}
    notes = []
    for t in slos:
        if t.endpoint is not None:
            notes.append(f"{t.text!r}: no rule (a per-endpoint SLO needs the service's own route labels)")
        elif t.statistic not in (*LATENCY_STATISTICS, "error_rate"):
            notes.append(f"{t.text!r}: no rule ({t.statistic} is not one of {', '.join(LATENCY_STATISTICS)}, error_rate)")
        elif t.op not in ("<", "<="):
            notes.append(f"{t.text!r}: no rule (only upper bounds such as 'p95<300ms' become alerts)")
        elif t.limit <= 0 and t.op == "<":
            notes.append(f"{t.text!r}: no rule (nothing can meet it, so the alert would always fire)")
        elif t.statistic in kept and (kept[t.statistic].limit, kept[t.statistic].op) <= (t.limit, t.op):
            notes.append(f"{t.text!r}: no rule ({kept[t.statistic].text!r} is tighter)")
        else:
            if t.statistic in kept:
                notes.append(f"{kept[t.statistic].text!r}: no rule ({t.text!r} is tighter)")
            kept[t.statistic] = t
    order = [*LATENCY_STATISTICS, "error_rate"]
    return sorted(kept.values(), key=lambda t: order.index(t.statistic)), notes


def measured_capacity(run_id: str, steps: pd.DataFrame, slos: list[Threshold], replicas: int,
                      shape: str | None) -> tuple[Capacity | None, str | None]:  # fmt: skip
    """The lowest SLO-bound capacity over the latency SLOs the steps can judge (the rate at
    which the first of them breaks), or None and why not."""
    bounds = [t for t in slos if t.statistic in STEP_STATISTICS]
    if not bounds:
        return None, f"no capacity rule: no overall {', '.join(STEP_STATISTICS)} latency SLO to bound the capacity"
    if steps.empty:
        return None, (f"no capacity rule: run {run_id} has no steady steps to measure capacity on "
                      f"(its shape is {shape or 'none'}; run with --shape step)")  # fmt: skip
    found = []
    for t in bounds:
        result = slo_capacity(steps, t.limit, t.statistic)
        if not result.capacity_rps:
            return None, f"no capacity rule: {t.text} was never met in run {run_id} ({result.note})"
        found.append((float(result.capacity_rps), t, result))
    rps, t, result = min(found, key=lambda item: item[0])
    return Capacity(run_id, t.text, rps, replicas, result.lower_bound, result.note), None


def _capacity_rule(capacity: Capacity, settings: AlertSettings, matchers: list[str], scenario_label: dict[str, str]) -> dict[str, Any]:
    per_pod = capacity.per_pod_rps
    threshold = float(_number(per_pod * settings.capacity_fraction))
    pod = settings.pod_label
    served = (f"{capacity.replicas} replicas served {_shown(capacity.total_rps)} req/s together"
              if capacity.replicas > 1 else "on 1 replica")  # fmt: skip
    bound = " (a lower bound: every step met the SLO)" if capacity.lower_bound else ""
    return {
        "alert": "RequestRateNearCapacity",
        "expr": f"sum by ({pod}) (rate({REQUESTS}{_selector(matchers)}[{settings.rate_window}])) > {_number(threshold)}",
        "for": settings.capacity_for,
        "labels": {"severity": "warning", **scenario_label},
        "annotations": {
            "summary": f"{{{{ $labels.{pod} }}}} serves {{{{ $value | humanize }}}} req/s, above "
                       f"{_percent(settings.capacity_fraction)} of its SLO-bound capacity",
            "description": f"SLO-bound capacity {_shown(per_pod)} req/s per pod{bound} measured in run "
                           f"{capacity.run_id} at {capacity.slo} ({served}); threshold {_shown(threshold)} req/s = "
                           f"{_percent(settings.capacity_fraction)}. Add replicas before {capacity.slo} breaks.",
            "loadwise_run": capacity.run_id,
            "loadwise_slo": capacity.slo,
            "loadwise_threshold": _number(threshold),
            "loadwise_measured_capacity_rps": _number(per_pod),
            "loadwise_capacity_fraction": _number(settings.capacity_fraction),
            "loadwise_replicas_in_run": str(capacity.replicas),
        },
    }  # fmt: skip


def _slo_rule(t: Threshold, run_id: str, overall: dict[str, Any], settings: AlertSettings, matchers: list[str],
              scenario_label: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    window = settings.rate_window
    measured = overall.get(t.metric)
    if t.statistic == "error_rate":
        limit = t.limit
        errors = f"sum(rate({REQUESTS}{_selector(matchers, ERROR_STATUS)}[{window}]))"
        expr = f"{errors} / sum(rate({REQUESTS}{_selector(matchers)}[{window}])) {_alert_above(t)} {_number(limit)}"
        name = "ErrorRatioAboveSLO"
        summary = f"{{{{ $value | humanizePercentage }}}} of responses are 5xx, breaking the SLO {t.text}"
        what, shown_limit = f"The share of 5xx responses over {window}", f"{limit:.2%}"
        ran = "" if measured is None else f" Run {run_id} measured an error rate of {measured:.2%} (client side, all failures)."
    else:
        limit = t.limit / 1000.0  # the histogram is in seconds
        buckets = f"sum by (le) (rate({DURATION_BUCKET}{_selector(matchers)}[{window}]))"
        expr = f"histogram_quantile({_number(int(t.statistic[1:]) / 100)}, {buckets}) {_alert_above(t)} {_number(limit)}"
        name = f"Latency{t.statistic.upper()}AboveSLO"
        summary = f"{t.statistic} latency {{{{ $value | humanizeDuration }}}} breaks the SLO {t.text}"
        what, shown_limit = f"The {t.statistic} latency over {window}", f"{_shown(t.limit)} ms ({_number(limit)} s)"
        ran = ("" if measured is None else
               f" Run {run_id} measured {t.statistic} {_shown(measured)} ms at {_shown(overall.get('rps') or 0)} req/s.")  # fmt: skip
    annotations = {
        "summary": summary,
        "description": f"{what} has been {'at or ' if t.op == '<' else ''}above {shown_limit} for {settings.slo_for}, "
                       f"breaking the SLO {t.text}.{ran}",
        "loadwise_run": run_id,
        "loadwise_slo": t.text,
        "loadwise_threshold": _number(limit),
    }  # fmt: skip
    if measured is not None:
        annotations[f"loadwise_measured_{t.metric}"] = _number(measured)
    return {"alert": name, "expr": expr, "for": settings.slo_for,
            "labels": {"severity": "critical", **scenario_label}, "annotations": annotations}  # fmt: skip


def alert_rules(info: RunInfo, overall: dict[str, Any], steps: pd.DataFrame, slos: list[Threshold],
                settings: AlertSettings) -> RuleGroup:  # fmt: skip
    """One rule group: per-pod request rate near the SLO-bound capacity, then one rule per SLO.

    `steps` is the run's step table (analysis.steps; empty when the run has no steps) and
    `overall` its summary's overall statistics, quoted in the annotations."""
    matchers = settings.check()
    kept, notes = usable_slos(slos)
    capacity, why_not = measured_capacity(info.id, steps, kept, settings.replicas_in_run, info.shape)
    scenario = Path(info.scenario).stem if info.scenario.endswith(".py") else info.scenario
    scenario_label = {"loadwise_scenario": scenario}
    rules, made = [], []
    if capacity is None:
        notes.insert(0, str(why_not))
    else:
        rule = _capacity_rule(capacity, settings, matchers, scenario_label)
        rules.append(rule)
        made.append(f"{rule['alert']} ({rule['labels']['severity']}): request rate per {settings.pod_label} above "
                    f"{rule['annotations']['loadwise_threshold']} req/s for {rule['for']} "
                    f"({_percent(settings.capacity_fraction)} of {_shown(capacity.per_pod_rps)} req/s per pod at {capacity.slo})")  # fmt: skip
        if capacity.lower_bound:
            notes.append(f"the capacity is a lower bound ({capacity.note}): the capacity alert may fire early")
        if info.status != STATUS_COMPLETED:
            notes.append(f"run {info.id} is {info.status}: its capacity may be understated")
    for t in kept:
        rule = _slo_rule(t, info.id, overall, settings, matchers, scenario_label)
        rules.append(rule)
        made.append(f"{rule['alert']} ({rule['labels']['severity']}): {t.text} broken for {rule['for']} "
                    f"(threshold {rule['annotations']['loadwise_threshold']})")  # fmt: skip
    if not rules:
        raise AlertError("nothing to alert on: " + "; ".join(notes))
    return RuleGroup(f"loadwise-{scenario}", rules, made, notes, capacity)
