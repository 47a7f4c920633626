"""A simulator of the Kubernetes HorizontalPodAutoscaler controller (autoscaling/v2).

It follows the documented algorithm: every sync period (15 s) the desired replica count
is ceil(current × currentMetric / target), left alone when the ratio is within the
tolerance (0.1); metrics are averaged over ready pods, and when scaling up, pods not yet
ready count as using nothing (so a scale-up is not repeated for pods still starting);
recommendations are stabilized (the highest of the scale-down window, the lowest of the
scale-up window); the change is limited by the `behavior` policies (Pods and Percent,
each over its period, picked by selectPolicy Max, Min or Disabled); the result is clamped
to [minReplicas, maxReplicas]. New pods serve traffic after a start-up delay.

The service is modelled per pod from measured data: CPU per request and the SLO-bound
capacity per pod. Load beyond a pod's capacity breaks the SLO for that moment.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

SYNC_PERIOD_S = 15.0
TOLERANCE = 0.1


@dataclass(frozen=True)
class Policy:
    type: str  # "Pods" or "Percent"
    value: int
    period_s: float


@dataclass(frozen=True)
class ScalingRules:
    stabilization_window_s: float
    policies: tuple[Policy, ...]
    select_policy: str = "Max"  # "Max", "Min" or "Disabled"


# The documented defaults of autoscaling/v2 `behavior`.
DEFAULT_SCALE_UP = ScalingRules(0.0, (Policy("Percent", 100, 15.0), Policy("Pods", 4, 15.0)), "Max")
DEFAULT_SCALE_DOWN = ScalingRules(300.0, (Policy("Percent", 100, 15.0),), "Max")


@dataclass(frozen=True)
class HPASpec:
    min_replicas: int
    max_replicas: int
    metric: str = "cpu"  # "cpu": target is average utilization of requests (0.8 = 80 %); "rps": requests/s per pod
    target: float = 0.8
    scale_up: ScalingRules = DEFAULT_SCALE_UP
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"minReplicas {self.min_replicas} must be between 1 and maxReplicas {self.max_replicas}")
        if self.target <= 0:
            raise ValueError("the target must be positive")
        if self.metric not in ("cpu", "rps"):
            raise ValueError(f"unknown metric {self.metric!r}")


@dataclass(frozen=True)
class PodModel:
    cpu_per_request: float  # CPU seconds per request (measured)
    capacity_rps: float  # requests/s one pod serves within the SLO (measured)
    cpu_request: float = 0.5  # cores requested per pod: utilization is relative to it
    idle_cpu: float = 0.01  # cores a pod uses with no traffic
    startup_s: float = 30.0  # from creation to serving traffic


@dataclass
class SimResult:
    times: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    replica_seconds: float = 0.0
    violation_seconds: float = 0.0
    duration_s: float = 0.0

    @property
    def replica_hours(self) -> float:
        return self.replica_seconds / 3600.0

    @property
    def peak_replicas(self) -> int:
        return max(self.replicas) if self.replicas else 0

    def summary(self) -> dict[str, float]:
        return {"replica_hours": round(self.replica_hours, 3), "slo_violation_seconds": round(self.violation_seconds, 1),
                "peak_replicas": self.peak_replicas, "duration_s": self.duration_s}  # fmt: skip


class HPAController:
    """The controller's memory between syncs: past recommendations and scaling events."""

    def __init__(self, spec: HPASpec, replicas: int):
        self.spec = spec
        self.recommendations: list[tuple[float, int]] = []
        self.events: list[tuple[float, int]] = []  # (time, replica change)
        self.replicas = replicas

    def _metric(self, per_pod_rps: float, pod: PodModel) -> float:
        if self.spec.metric == "rps":
            return per_pod_rps
        return (pod.idle_cpu + per_pod_rps * pod.cpu_per_request) / pod.cpu_request

    def desired(self, now: float, rps: float, ready: int, pod: PodModel) -> int:
        """One sync: the replica count the controller sets."""
        current = self.replicas
        if ready == 0:
            proposal = current
        else:
            ratio = self._metric(rps / ready, pod) / self.spec.target
            not_ready = current - ready
            if ratio > 1 and not_ready > 0:
                # Pods still starting count as using nothing when scaling up.
                ratio_all = self._metric(rps / ready, pod) * ready / current / self.spec.target
                if ratio_all <= 1 + TOLERANCE:
                    ratio = 1.0
                else:
                    ratio = ratio_all
            proposal = current if abs(ratio - 1) <= TOLERANCE else math.ceil(current * ratio - 1e-9)
        proposal = min(max(proposal, self.spec.min_replicas), self.spec.max_replicas)
        self.recommendations.append((now, proposal))
        stabilized = self._stabilize(now, proposal, current)
        final = self._limit(now, stabilized, current)
        final = min(max(final, self.spec.min_replicas), self.spec.max_replicas)
        if final != current:
            self.events.append((now, final - current))
        self.replicas = final
        return final

    def _stabilize(self, now: float, proposal: int, current: int) -> int:
        up_window = self.spec.scale_up.stabilization_window_s
        down_window = self.spec.scale_down.stabilization_window_s
        horizon = max(up_window, down_window)
        self.recommendations = [(t, r) for t, r in self.recommendations if t >= now - horizon]
        up = min([r for t, r in self.recommendations if t >= now - up_window] or [proposal])
        down = max([r for t, r in self.recommendations if t >= now - down_window] or [proposal])
        if proposal > current:
            return max(min(proposal, up), current)
        if proposal < current:
            return min(max(proposal, down), current)
        return current

    def _limit(self, now: float, desired: int, current: int) -> int:
        if desired == current:
            return current
        rules = self.spec.scale_up if desired > current else self.spec.scale_down
        if rules.select_policy == "Disabled":
            return current
        limits = []
        for policy in rules.policies:
            changed = sum(abs(d) for t, d in self.events if t > now - policy.period_s and (d > 0) == (desired > current))
            base = current - changed if desired > current else current + changed  # replicas at the period's start
            if policy.type == "Pods":
                room = policy.value
            else:
                room = math.ceil(base * policy.value / 100) if desired > current else math.floor(base * policy.value / 100)
            limits.append(base + room if desired > current else base - room)
        if desired > current:
            limit = max(limits) if rules.select_policy == "Max" else min(limits)
            return max(min(desired, limit), current)
        limit = min(limits) if rules.select_policy == "Max" else max(limits)
        return min(max(desired, limit), current)


def simulate(spec: HPASpec, pod: PodModel, trace: Callable[[float], float], duration_s: float,
             initial_replicas: int | None = None, step_s: float = 5.0) -> SimResult:  # fmt: skip
    """Replay `trace` (requests/s at time t) for `duration_s` under the HPA."""
    replicas = initial_replicas if initial_replicas is not None else spec.min_replicas
    controller = HPAController(spec, replicas)
    started = [-pod.startup_s] * replicas  # creation times; the initial pods are ready
    result = SimResult(duration_s=duration_s)
    next_sync = SYNC_PERIOD_S
    t = 0.0
    while t < duration_s:
        rps = max(trace(t), 0.0)
        ready = sum(1 for s in started if t - s >= pod.startup_s)
        if t >= next_sync:
            next_sync += SYNC_PERIOD_S
            target = controller.desired(t, rps, ready, pod)
            if target > len(started):
                started += [t] * (target - len(started))
            elif target < len(started):
                started = sorted(started)[: target]  # the newest (least ready) pods go first
            ready = sum(1 for s in started if t - s >= pod.startup_s)
        result.times.append(t)
        result.load.append(rps)
        result.replicas.append(len(started))
        result.ready.append(ready)
        result.replica_seconds += len(started) * step_s
        if rps > 0 and (ready == 0 or rps / ready > pod.capacity_rps):
            result.violation_seconds += step_s
        t += step_s
    return result
