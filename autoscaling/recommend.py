"""The HPA recommender: search settings on the simulator, keep the cheapest that holds the SLO.

A KRR-style strategy: typed settings in, a recommendation carrying its evidence out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from loadwise.autoscaling.controller import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, Policy, ScalingRules
from loadwise.autoscaling.hpa import HPASpec, PodModel, SimResult, simulate
from loadwise.autoscaling.settings import HpaSettings
from loadwise.autoscaling.traces import NamedTrace

FAST_SCALE_UP = ScalingRules(0.0, (Policy("Percent", 200, 15.0), Policy("Pods", 8, 15.0)), "Max")
GENTLE_SCALE_DOWN = ScalingRules(120.0, (Policy("Percent", 50, 60.0),), "Max")
# The behaviors searched, by the label the recommendation's evidence carries.
BEHAVIORS = {"default": (DEFAULT_SCALE_UP, DEFAULT_SCALE_DOWN), "fast up": (FAST_SCALE_UP, DEFAULT_SCALE_DOWN),
             "fast up, gentle down": (FAST_SCALE_UP, GENTLE_SCALE_DOWN)}  # fmt: skip


@dataclass
class Candidate:
    spec: HPASpec
    result: SimResult
    label: str = ""

    def evidence(self) -> dict[str, Any]:
        return self.result.summary() | {"target": self.spec.target, "min_replicas": self.spec.min_replicas,
                                        "max_replicas": self.spec.max_replicas, "behavior": self.label}  # fmt: skip


@dataclass
class HpaRecommendation:
    recommended: Candidate
    current: Candidate
    pod: PodModel
    recommended_pod: PodModel  # the pod the recommended settings were simulated with (its CPU request)
    trace: str
    budget_s: float
    within_budget: bool
    notes: list[str] = field(default_factory=list)
    searched: int = 0


def sim_step(duration_s: float) -> float:
    """Fine enough to see a violation budget of 0.1 %, coarse enough for a day-long trace."""
    return max(1.0, round(duration_s / 20_000))


def recommend(pod: PodModel, trace: NamedTrace, current: HPASpec, settings: HpaSettings,
              resized: PodModel | None = None) -> HpaRecommendation:  # fmt: skip
    """The cheapest searched settings that hold the SLO, against the current ones. `resized`:
    the same pod with a recommended CPU request, which the searched settings then assume."""
    searched_pod = resized or pod
    budget = settings.violation_budget * trace.duration_s
    step = sim_step(trace.duration_s)
    needed_at_peak = math.ceil(trace.peak_rps / pod.capacity_rps)
    max_replicas = min(max(needed_at_peak * 2, current.max_replicas, 2), settings.max_replicas_cap)
    baseline = Candidate(current, simulate(current, pod, trace.rps, trace.duration_s, step_s=step), "as configured")
    tried: list[Candidate] = []
    low_load = trace.rps(0.0)
    for target in settings.targets:
        # the target per pod the model allows: utilization of requests at capacity
        for floor in sorted({1, 2, max(1, math.ceil(low_load / pod.capacity_rps))}):
            for label, (up, down) in BEHAVIORS.items():
                spec = HPASpec(min(floor, max_replicas), max_replicas, current.metric,
                               target if current.metric == "cpu" else target * pod.capacity_rps, up, down)  # fmt: skip
                tried.append(Candidate(spec, simulate(spec, searched_pod, trace.rps, trace.duration_s, step_s=step), label))
    good = [c for c in tried if c.result.violation_seconds <= budget]
    notes = []
    if good:
        best = min(good, key=lambda c: (c.result.replica_seconds, c.result.violation_seconds))
    else:
        best = min(tried, key=lambda c: (c.result.violation_seconds, c.result.replica_seconds))
        notes.append(f"no setting kept SLO violations within {budget:.0f} s; this one breaks it least "
                     "(pods start too slowly for the trace, or maxReplicas is capped)")  # fmt: skip
    if best.result.replica_seconds > baseline.result.replica_seconds:
        if baseline.result.violation_seconds <= budget:
            notes.append("the current settings already hold the SLO with fewer replica-hours; keep them")
            best, searched_pod = baseline, pod
        else:
            extra = best.result.replica_hours - baseline.result.replica_hours
            notes.append(f"more replica-hours than the current settings (+{extra:.1f} h) because those break the SLO "
                         f"for {baseline.result.violation_seconds:.0f} s of the trace (budget {budget:.0f} s)")  # fmt: skip
    return HpaRecommendation(best, baseline, pod, searched_pod, trace.name, budget, bool(good), notes, len(tried))
