"""A simulator of a Deployment under the Kubernetes HorizontalPodAutoscaler (autoscaling/v2).

Every sync period (15 s) the controller reads each pod's metric and state and proposes a
replica count per metric (`replicas`, a port of Kubernetes' replica calculator), then
stabilizes and rate-limits it (`controller`, a port of horizontal.go): the simulator
reproduces Kubernetes 1.33's own unit tests (tests/test_hpa_kubernetes.py).

Pods are modelled one by one: created, Pending for a moment, then started (not Ready, no
traffic, start-up CPU), Ready after the start-up delay; their metric appears a scrape
after they start. The service's figures come from measured data: CPU seconds per request
and the SLO-bound capacity per pod. Load beyond the Ready pods' capacity breaks the SLO
for that moment.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

from loadwise.autoscaling.controller import (
    DEFAULT_DOWNSCALE_WINDOW_S,
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    KUBERNETES_SEMANTICS,
    HPAController,
    Policy,
    ScalingRules,
)
from loadwise.autoscaling.replicas import (
    DEFAULT_CPU_INITIALIZATION_PERIOD_S,
    DEFAULT_INITIAL_READINESS_DELAY_S,
    DEFAULT_TOLERANCE,
    FAR_PAST_S,
    MetricError,
    PodState,
    ReadinessRules,
    Tolerances,
    average_value_replicas,
    resource_replicas,
)
from loadwise.autoscaling.settings import CPU_REQUEST, KUBERNETES_CPU_TARGET, STARTUP_S

__all__ = ["DEFAULT_SCALE_DOWN", "DEFAULT_SCALE_UP", "KUBERNETES_SEMANTICS", "ControllerSettings", "HPASpec",
           "PodModel", "Policy", "ScalingRules", "SimResult", "simulate"]  # fmt: skip

SYNC_PERIOD_S = 15.0
METRICS = ("cpu", "rps")  # cpu: average utilization of requests (0.8 = 80 %); rps: a Pods metric, requests/s per pod


@dataclass(frozen=True)
class HPASpec:
    min_replicas: int
    max_replicas: int
    metric: str = "cpu"
    target: float = KUBERNETES_CPU_TARGET
    # None on both sides: an HPA without `behavior` (the autoscaling/v1 path: the 5 min
    # downscale window, scale-up limited to max(2 x current, 4)). One side None: its default.
    scale_up: ScalingRules | None = DEFAULT_SCALE_UP
    scale_down: ScalingRules | None = DEFAULT_SCALE_DOWN
    extra_metrics: tuple[tuple[str, float], ...] = ()  # more (metric, target) pairs: the highest proposal wins

    def __post_init__(self) -> None:
        if self.max_replicas < 1:
            raise ValueError(f"maxReplicas {self.max_replicas} must be at least 1")
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"minReplicas {self.min_replicas} must be between 0 and maxReplicas {self.max_replicas}")
        for metric, target in self.metrics:
            if target <= 0:
                raise ValueError("the target must be positive")
            if metric not in METRICS:
                raise ValueError(f"unknown metric {metric!r} (use {' or '.join(METRICS)})")

    @property
    def metrics(self) -> tuple[tuple[str, float], ...]:
        return ((self.metric, self.target), *self.extra_metrics)

    @property
    def behavior(self) -> tuple[ScalingRules, ScalingRules] | None:
        if self.scale_up is None and self.scale_down is None:
            return None
        return (self.scale_up or DEFAULT_SCALE_UP, self.scale_down or DEFAULT_SCALE_DOWN)


@dataclass(frozen=True)
class ControllerSettings:
    """kube-controller-manager's HPA flags (their Kubernetes defaults)."""

    sync_period_s: float = SYNC_PERIOD_S
    tolerance: float = DEFAULT_TOLERANCE
    cpu_initialization_period_s: float = DEFAULT_CPU_INITIALIZATION_PERIOD_S
    initial_readiness_delay_s: float = DEFAULT_INITIAL_READINESS_DELAY_S
    downscale_window_s: float = DEFAULT_DOWNSCALE_WINDOW_S


@dataclass(frozen=True)
class PodModel:
    cpu_per_request: float  # CPU seconds per request (measured)
    capacity_rps: float  # requests/s one pod serves within the SLO (measured)
    cpu_request: float = CPU_REQUEST  # cores requested per pod: utilization is relative to it
    idle_cpu: float = 0.01  # cores a pod uses with no traffic
    startup_s: float = STARTUP_S  # from creation to Ready (serving traffic)
    pending_s: float = 2.0  # from creation to started (scheduled, image present)
    startup_cpu: float | None = None  # cores while starting (a JVM warming up burns more); None: idle_cpu
    metrics_delay_s: float = 15.0  # from start to the pod's first metric (a metrics-server scrape)
    metric_window_s: float = 15.0


@dataclass
class SimResult:
    times: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    replica_seconds: float = 0.0
    violation_seconds: float = 0.0
    duration_s: float = 0.0
    metric_errors: int = 0  # syncs where no metric could be computed (the controller keeps the count)

    @property
    def replica_hours(self) -> float:
        return self.replica_seconds / 3600.0

    @property
    def peak_replicas(self) -> int:
        return max(self.replicas) if self.replicas else 0

    def summary(self) -> dict[str, float]:
        return {"replica_hours": round(self.replica_hours, 3), "slo_violation_seconds": round(self.violation_seconds, 1),
                "peak_replicas": self.peak_replicas, "duration_s": self.duration_s,
                "kubernetes_semantics": KUBERNETES_SEMANTICS}  # fmt: skip


@dataclass
class _Pod:
    created_s: float

    def started(self, pod: PodModel) -> float:
        return self.created_s + pod.pending_s

    def ready_at(self, pod: PodModel) -> float:
        return self.created_s + max(pod.startup_s, pod.pending_s)


def _states(pods: list[_Pod], now: float, rps: float, ready: int, model: PodModel, metric: str,
            settled_after_s: float) -> list[PodState]:  # fmt: skip
    """What the controller sees of each pod: phase, readiness, request and metric (milli-units);
    the `ready` pods share the load. Pods Ready since before `settled_after_s` (past every
    readiness rule) look alike: one shared state."""
    per_pod = rps / ready if ready else 0.0
    request_m = round(model.cpu_request * 1000)
    busy = round((model.idle_cpu + per_pod * model.cpu_per_request) * 1000) if metric == "cpu" else round(per_pod * 1000)
    starting = round((model.startup_cpu or model.idle_cpu) * 1000) if metric == "cpu" else 0
    settled = PodState(start_s=FAR_PAST_S, request_m=request_m, metric_m=busy, metric_timestamp_s=now,
                       metric_window_s=model.metric_window_s)  # fmt: skip
    states = []
    for p in pods:
        started, ready_at = p.started(model), p.ready_at(model)
        if started < settled_after_s and ready_at <= now:
            states.append(settled)
        elif started > now:
            states.append(PodState(phase="Pending", ready=False, start_s=None, request_m=request_m))
        else:
            is_ready = ready_at <= now
            has_metric = started + model.metrics_delay_s <= now
            states.append(PodState(ready=is_ready, start_s=started, ready_transition_s=ready_at if is_ready else started,
                                   request_m=request_m, metric_m=(busy if is_ready else starting) if has_metric else None,
                                   metric_timestamp_s=now, metric_window_s=model.metric_window_s))  # fmt: skip
    return states


def _scale_in_order(pods: list[_Pod], now: float, model: PodModel) -> list[_Pod]:
    """The ReplicaSet controller deletes Pending pods first, then not Ready ones, then the newest."""
    return sorted(pods, key=lambda p: (p.started(model) > now, p.ready_at(model) > now, p.created_s), reverse=True)


def proposals(spec: HPASpec, pods: list[PodState], current: int, now: float,
              settings: ControllerSettings = ControllerSettings()) -> list[int | None]:  # fmt: skip
    """Each metric's proposal for this sync (None for a metric that cannot be computed)."""
    tolerances, rules = _tolerances(spec, settings), _readiness(settings)
    return [_proposal(metric, target, pods, current, now, tolerances, rules) for metric, target in spec.metrics]


def _tolerances(spec: HPASpec, settings: ControllerSettings) -> Tolerances:
    """Per-direction tolerances: the HPA's behavior fields where set, else the controller's flag."""
    up, down = spec.behavior or (None, None)
    return Tolerances(down=settings.tolerance if down is None or down.tolerance is None else down.tolerance,
                      up=settings.tolerance if up is None or up.tolerance is None else up.tolerance)  # fmt: skip


def _readiness(settings: ControllerSettings) -> ReadinessRules:
    return ReadinessRules(settings.cpu_initialization_period_s, settings.initial_readiness_delay_s)


def _proposal(metric: str, target: float, pods: list[PodState], current: int, now: float, tolerances: Tolerances,
              rules: ReadinessRules) -> int | None:  # fmt: skip
    try:
        if metric == "cpu":
            return resource_replicas(current, pods, round(target * 100), now, tolerances=tolerances, rules=rules).replicas
        return average_value_replicas(current, pods, round(target * 1000), now, tolerances=tolerances, rules=rules).replicas
    except MetricError:
        return None


def simulate(spec: HPASpec, pod: PodModel, trace: Callable[[float], float], duration_s: float,
             initial_replicas: int | None = None, step_s: float = 5.0,
             settings: ControllerSettings = ControllerSettings()) -> SimResult:  # fmt: skip
    """Replay `trace` (requests/s at time t) for `duration_s` under the HPA."""
    replicas = initial_replicas if initial_replicas is not None else max(spec.min_replicas, 1)
    controller = HPAController(spec.min_replicas, spec.max_replicas, spec.behavior, settings.downscale_window_s)
    pods = [_Pod(FAR_PAST_S) for _ in range(replicas)]  # the initial pods are long Ready
    result = SimResult(duration_s=duration_s)
    tolerances, rules = _tolerances(spec, settings), _readiness(settings)
    next_sync = settings.sync_period_s
    ready_times = sorted(p.ready_at(pod) for p in pods)
    t = 0.0
    while t < duration_s:
        rps = max(trace(t), 0.0)
        if t >= next_sync:
            next_sync += settings.sync_period_s
            current = len(pods)
            ready = bisect.bisect_right(ready_times, t)
            # Older than the CPU initialization period and Ready well before now: past every readiness rule.
            settled_after = t - max(settings.cpu_initialization_period_s, pod.metric_window_s + pod.startup_s)
            metric_proposals = [_proposal(metric, target, _states(pods, t, rps, ready, pod, metric, settled_after),
                                          current, t, tolerances, rules) for metric, target in spec.metrics]  # fmt: skip
            if all(p is None for p in metric_proposals):
                result.metric_errors += 1  # the controller leaves the scale alone
            target = controller.reconcile(t, current, metric_proposals)
            if target > current:
                pods += [_Pod(t) for _ in range(target - current)]
            elif target < current:
                pods = _scale_in_order(pods, t, pod)[current - target:]
            ready_times = sorted(p.ready_at(pod) for p in pods)
        ready = bisect.bisect_right(ready_times, t)
        result.times.append(t)
        result.load.append(rps)
        result.replicas.append(len(pods))
        result.ready.append(ready)
        result.replica_seconds += len(pods) * step_s
        if rps > 0 and (ready == 0 or rps / ready > pod.capacity_rps):
            result.violation_seconds += step_s
        t += step_s
    return result
