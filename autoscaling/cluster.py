"""The HPA and Deployment in use, as the simulator's terms (pure: the objects come from `loadwise.k8s.hpa`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadwise.autoscaling.controller import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, Policy, ScalingRules
from loadwise.autoscaling.hpa import HPASpec
from loadwise.autoscaling.settings import KUBERNETES_CPU_TARGET


@dataclass
class ClusterState:
    hpa: HPASpec | None
    replicas: int
    cpu_request: float | None  # cores, of the first container that requests CPU


def _cpu(quantity: str | None) -> float | None:
    if not quantity:
        return None
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _rules(raw: Any, default: ScalingRules) -> ScalingRules:
    if raw is None:
        return default
    policies = tuple(Policy(p.type, int(p.value), float(p.period_seconds)) for p in (raw.policies or [])) or default.policies
    window = raw.stabilization_window_seconds
    tolerance = getattr(raw, "tolerance", None)  # a Quantity string since Kubernetes 1.33 ("0.05")
    return ScalingRules(float(default.stabilization_window_s if window is None else window), policies,
                        raw.select_policy or "Max", None if tolerance is None else float(tolerance))  # fmt: skip


def cluster_state(deployment: Any, hpa: Any | None) -> ClusterState:
    """The Deployment's replicas and CPU request, and its HPA (None when it has none) as an HPASpec."""
    cpu = None
    for container in deployment.spec.template.spec.containers or []:
        requests = (container.resources.requests or {}) if container.resources else {}
        cpu = _cpu(requests.get("cpu"))
        if cpu:
            break
    spec = None
    if hpa is not None:
        metrics: list[tuple[str, float]] = []  # every metric the simulator can model; the highest proposal wins
        for m in hpa.spec.metrics or []:
            if m.type == "Resource" and m.resource.name == "cpu" and m.resource.target.average_utilization:
                metrics.append(("cpu", m.resource.target.average_utilization / 100))
            elif m.type == "Pods" and m.pods.target.average_value:
                metrics.append(("rps", float(m.pods.target.average_value)))
        (metric, target), *extra = metrics or [("cpu", KUBERNETES_CPU_TARGET)]
        behavior = hpa.spec.behavior
        # No `behavior` at all takes the controller's other path (downscale window, scale-up
        # at most max(2 x current, 4)); with one, a missing side gets its default.
        up = _rules(behavior.scale_up, DEFAULT_SCALE_UP) if behavior else None
        down = _rules(behavior.scale_down, DEFAULT_SCALE_DOWN) if behavior else None
        min_replicas = 1 if hpa.spec.min_replicas is None else hpa.spec.min_replicas
        spec = HPASpec(min_replicas, hpa.spec.max_replicas, metric, target, up, down, tuple(extra))
    return ClusterState(spec, int(deployment.spec.replicas or 1), cpu)
