"""autoscaling/v2 HorizontalPodAutoscaler manifests, validated against the Kubernetes schema
(kubernetes-validate, offline) before they are written."""

from __future__ import annotations

from typing import Any

import yaml

from loadwise.autoscaling.controller import ScalingRules
from loadwise.autoscaling.hpa import HPASpec
from loadwise.errors import LoadwiseError

KUBERNETES_VERSION = "1.30"  # the oldest schema the manifests are checked against ...
TOLERANCE_VERSION = "1.33"  # ... unless they set a per-direction tolerance (a field since 1.33)


class ManifestError(LoadwiseError, ValueError):
    pass


def _rules(rules: ScalingRules) -> dict[str, Any]:
    out = {
        "stabilizationWindowSeconds": int(rules.stabilization_window_s),
        "selectPolicy": rules.select_policy,
        "policies": [{"type": p.type, "value": int(p.value), "periodSeconds": int(p.period_s)} for p in rules.policies],
    }
    if rules.tolerance is not None:  # an HPA field since Kubernetes 1.33 (feature gate HPAConfigurableTolerance)
        out["tolerance"] = f"{rules.tolerance:g}"
    return out


def _metric(metric: str, target: float) -> dict[str, Any]:
    if metric == "cpu":
        return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                "averageUtilization": int(round(target * 100))}}}  # fmt: skip
    return {"type": "Pods", "pods": {"metric": {"name": "http_requests_per_second"},
            "target": {"type": "AverageValue", "averageValue": f"{target:g}"}}}  # fmt: skip


def hpa_manifest(spec: HPASpec, name: str, namespace: str | None = None, cpu_request: float | None = None) -> dict[str, Any]:
    if spec.min_replicas > spec.max_replicas:
        raise ManifestError(f"minReplicas {spec.min_replicas} is above maxReplicas {spec.max_replicas}")
    metrics = [_metric(metric, target) for metric, target in spec.metrics]
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    if cpu_request:
        metadata["annotations"] = {"loadwise/assumes-cpu-request": f"{int(cpu_request * 1000)}m"}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": spec.min_replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": metrics,
            **({"behavior": {"scaleUp": _rules(spec.behavior[0]), "scaleDown": _rules(spec.behavior[1])}}
               if spec.behavior else {}),
        },
    }


def validate(manifest: dict[str, Any]) -> None:
    import kubernetes_validate

    spec = manifest.get("spec", {})
    if isinstance(spec.get("minReplicas"), int) and isinstance(spec.get("maxReplicas"), int) and spec["minReplicas"] > spec["maxReplicas"]:
        raise ManifestError(f"minReplicas {spec['minReplicas']} is above maxReplicas {spec['maxReplicas']}")
    behavior = spec.get("behavior") or {}
    version = TOLERANCE_VERSION if any("tolerance" in (rules or {}) for rules in behavior.values()) else KUBERNETES_VERSION
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise ManifestError(f"the HPA does not match the Kubernetes {version} schema: {str(exc).splitlines()[0]}") from None


def to_yaml(manifest: dict[str, Any]) -> str:
    validate(manifest)
    return yaml.safe_dump(manifest, sort_keys=False)
