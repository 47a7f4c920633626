"""The HPA and Deployment in use, as the simulator's terms (pure: the objects come from `loadwise.k8s.hpa`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadwise.autoscaling.hpa import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, HPASpec, Policy, ScalingRules


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
    return ScalingRules(float(default.stabilization_window_s if window is None else window), policies,
                        raw.select_policy or "Max")  # fmt: skip


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
        metric, target = "cpu", 0.8
        for m in hpa.spec.metrics or []:
            if m.type == "Resource" and m.resource.name == "cpu" and m.resource.target.average_utilization:
                metric, target = "cpu", m.resource.target.average_utilization / 100
            elif m.type == "Pods" and m.pods.target.average_value:
                metric, target = "rps", float(m.pods.target.average_value)
        behavior = hpa.spec.behavior
        spec = HPASpec(hpa.spec.min_replicas or 1, hpa.spec.max_replicas, metric, target,
                       _rules(behavior.scale_up if behavior else None, DEFAULT_SCALE_UP),
                       _rules(behavior.scale_down if behavior else None, DEFAULT_SCALE_DOWN))  # fmt: skip
    return ClusterState(spec, int(deployment.spec.replicas or 1), cpu)
