"""How many replicas one metric asks for: the Kubernetes HPA replica calculator.

A port of `pkg/controller/podautoscaler/replica_calculator.go` (Kubernetes 1.33) as pure
functions over pod states, checked against that file's own unit tests
(tests/test_hpa_kubernetes.py). What it keeps from the controller:

- Pods being deleted and Failed pods are ignored; Pending pods count as unready.
- For CPU only, a pod is unready while it is in its initialization period (since its
  start) and either not Ready or its metric sample predates a full window after it became
  Ready; after that period, only a pod that is not Ready and has never been Ready is.
  Other metrics use every Running pod that has a metric.
- The ratio is computed over the ready pods with metrics. When scaling up with unready
  pods, those count as using nothing; a pod with no metric counts as using its whole
  request (or the target, if higher) on a scale-down and nothing on a scale-up. If that
  flips the direction or lands within the tolerance, nothing changes.
- Utilization is an integer percent (Go's int32 truncation), and average values are
  integer milli-units, as the metrics client computes them.

Values are in milli-units (CPU millicores, request counts x 1000), as in Kubernetes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from loadwise.errors import LoadwiseError

DEFAULT_TOLERANCE = 0.1  # kube-controller-manager --horizontal-pod-autoscaler-tolerance
DEFAULT_CPU_INITIALIZATION_PERIOD_S = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period
DEFAULT_INITIAL_READINESS_DELAY_S = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay
FAR_PAST_S = -1e12  # Go's zero time: a pod started long ago


class MetricError(LoadwiseError, ValueError):
    """The controller could not compute a proposal (no metrics, missing requests): the input's doing."""


@dataclass(frozen=True)
class Tolerances:
    """The band around a ratio of 1 in which nothing changes: one value for each direction
    (per-direction tolerances are HPA fields since Kubernetes 1.33; before, both are the
    controller's flag)."""

    down: float = DEFAULT_TOLERANCE
    up: float = DEFAULT_TOLERANCE

    def within(self, ratio: float) -> bool:
        return 1.0 - self.down <= ratio <= 1.0 + self.up


@dataclass(frozen=True)
class ReadinessRules:
    cpu_initialization_period_s: float = DEFAULT_CPU_INITIALIZATION_PERIOD_S
    initial_readiness_delay_s: float = DEFAULT_INITIAL_READINESS_DELAY_S


@dataclass(frozen=True)
class PodState:
    """One pod as the controller sees it at a sync (times in seconds on one clock)."""

    phase: str = "Running"  # Running, Pending, Failed, Succeeded
    ready: bool | None = True  # the PodReady condition; None when the pod has none
    start_s: float | None = FAR_PAST_S  # status.startTime; None before the kubelet set it
    ready_transition_s: float | None = None  # the Ready condition's lastTransitionTime (default: start_s)
    deleting: bool = False  # metadata.deletionTimestamp set
    request_m: int | None = None  # the metric's resource request, summed over containers
    metric_m: int | None = None  # the pod's metric; None when the metrics API had none for it
    metric_timestamp_s: float = 0.0
    metric_window_s: float = 60.0


@dataclass
class Proposal:
    replicas: int
    usage: float  # utilization percent (resource utilization) or average milli-value
    ready: int = 0
    unready: list[int] = field(default_factory=list)  # indices into the pods given
    missing: list[int] = field(default_factory=list)
    ignored: list[int] = field(default_factory=list)


def group_pods(pods: list[PodState], now_s: float, cpu: bool, rules: ReadinessRules) -> tuple[int, list[int], list[int], list[int]]:
    """(ready count, unready, missing, ignored): Kubernetes' groupPods."""
    ready, unready, missing, ignored = 0, [], [], []
    for i, pod in enumerate(pods):
        if pod.deleting or pod.phase == "Failed":
            ignored.append(i)
            continue
        if pod.phase == "Pending":
            unready.append(i)
            continue
        if pod.metric_m is None:
            missing.append(i)
            continue
        if cpu and _cpu_unready(pod, now_s, rules):
            unready.append(i)
            continue
        ready += 1
    return ready, unready, missing, ignored


def _cpu_unready(pod: PodState, now_s: float, rules: ReadinessRules) -> bool:
    if pod.ready is None or pod.start_s is None:
        return True
    transition = pod.start_s if pod.ready_transition_s is None else pod.ready_transition_s
    if pod.start_s + rules.cpu_initialization_period_s > now_s:
        # In its initialization period: unready, or no full metric window since it became ready.
        return not pod.ready or pod.metric_timestamp_s < transition + pod.metric_window_s
    # Unready and never ready since it started.
    return not pod.ready and pod.start_s + rules.initial_readiness_delay_s > transition


def _utilization(metrics: dict[int, int], requests: dict[int, int]) -> tuple[int, int]:
    """(utilization percent, truncated as Go's int32 does, and its raw average) over `metrics`."""
    used = requested = 0
    for i, value in metrics.items():
        if i not in requests:
            raise MetricError(f"missing request for pod {i}")
        used += value
        requested += requests[i]
    if requested == 0:
        raise MetricError("no CPU request on the pods: utilization is undefined")
    return used * 100 // requested, used // len(metrics)


def _average(metrics: dict[int, int]) -> int:
    return sum(metrics.values()) // len(metrics)


def resource_replicas(current: int, pods: list[PodState], target_percent: int, now_s: float, *, cpu: bool = True,
                      tolerances: Tolerances = Tolerances(), rules: ReadinessRules = ReadinessRules()) -> Proposal:  # fmt: skip
    """A Resource metric with an averageUtilization target: Kubernetes' GetResourceReplicas."""
    requests = {i: p.request_m for i, p in enumerate(pods) if p.request_m is not None}

    def missing_as(i: int, ratio: float) -> int | None:
        # Scale-down: as using its request (or the target, if higher); scale-up: nothing.
        return requests.get(i, 0) * max(100, target_percent) // 100 if ratio < 1.0 else 0 if ratio > 1.0 else None

    return _propose(current, pods, now_s, cpu, tolerances, rules, target_percent,
                    lambda metrics: _utilization(metrics, requests)[0], missing_as)  # type: ignore[arg-type]  # fmt: skip


def average_value_replicas(current: int, pods: list[PodState], target_m: int, now_s: float, *, cpu: bool = False,
                           tolerances: Tolerances = Tolerances(), rules: ReadinessRules = ReadinessRules()) -> Proposal:  # fmt: skip
    """A Pods metric, or a Resource metric with an averageValue target (then `cpu` applies the
    CPU readiness rules): Kubernetes' calcPlainMetricReplicas."""

    def missing_as(i: int, ratio: float) -> int | None:
        return target_m if ratio < 1.0 else 0 if ratio > 1.0 else None

    return _propose(current, pods, now_s, cpu, tolerances, rules, target_m, _average, missing_as)


def _propose(current: int, pods: list[PodState], now_s: float, cpu: bool, tolerances: Tolerances, rules: ReadinessRules,
             target: int, usage_of: Callable[[dict[int, int]], int],
             missing_as: Callable[[int, float], int | None]) -> Proposal:  # fmt: skip
    """The two passes both calculators share. `usage_of` turns pod metrics into the usage
    compared with `target`; `missing_as` is what a pod without a metric counts as, given the
    first pass's ratio (None: left out)."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = group_pods(pods, now_s, cpu, rules)
    left_out = {*unready, *ignored}
    metrics = {i: p.metric_m for i, p in enumerate(pods) if p.metric_m is not None and i not in left_out}
    if not metrics:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    usage = usage_of(metrics)  # type: ignore[arg-type]
    ratio = usage / target
    proposal = Proposal(current, usage, ready, unready, missing, ignored)

    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if not tolerances.within(ratio):
            proposal.replicas = math.ceil(ratio * ready)
        return proposal
    for i in missing:
        value = missing_as(i, ratio)
        if value is not None:
            metrics[i] = value
    if scale_up_with_unready:
        metrics |= {i: 0 for i in unready}  # starting pods count as using nothing
    return _settle(proposal, current, ratio, usage_of(metrics) / target, len(metrics), tolerances)  # type: ignore[arg-type]


def _settle(proposal: Proposal, current: int, ratio: float, new_ratio: float, counted: int, tolerances: Tolerances) -> Proposal:
    """The second pass: no change if the assumptions for unready and missing pods bring the
    ratio within the tolerance, flip its direction, or would move replicas the wrong way."""
    if tolerances.within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return proposal
    replicas = math.ceil(new_ratio * counted)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return proposal
    proposal.replicas = replicas
    return proposal
