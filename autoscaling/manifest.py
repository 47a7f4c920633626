"""autoscaling/v2 HorizontalPodAutoscaler manifests, validated against the Kubernetes schema
(kubernetes-validate, offline) before they are written."""

from __future__ import annotations

from typing import Any

import yaml

from loadwise.autoscaling.hpa import HPASpec, ScalingRules
from loadwise.errors import LoadwiseError

KUBERNETES_VERSION = "1.30"


class ManifestError(LoadwiseError, ValueError):
    pass


def _rules(rules: ScalingRules) -> dict[str, Any]:
    return {
        "stabilizationWindowSeconds": int(rules.stabilization_window_s),
        "selectPolicy": rules.select_policy,
        "policies": [{"type": p.type, "value": int(p.value), "periodSeconds": int(p.period_s)} for p in rules.policies],
    }


def hpa_manifest(spec: HPASpec, name: str, namespace: str | None = None, cpu_request: float | None = None) -> dict[str, Any]:
    if spec.min_replicas > spec.max_replicas:
        raise ManifestError(f"minReplicas {spec.min_replicas} is above maxReplicas {spec.max_replicas}")
    if spec.metric == "cpu":
        metric = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                  "averageUtilization": int(round(spec.target * 100))}}}  # fmt: skip
    else:
        metric = {"type": "Pods", "pods": {"metric": {"name": "http_requests_per_second"},
                  "target": {"type": "AverageValue", "averageValue": f"{spec.target:g}"}}}  # fmt: skip
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
            "metrics": [metric],
            "behavior": {"scaleUp": _rules(spec.scale_up), "scaleDown": _rules(spec.scale_down)},
        },
    }


def validate(manifest: dict[str, Any]) -> None:
    import kubernetes_validate

    spec = manifest.get("spec", {})
    if isinstance(spec.get("minReplicas"), int) and isinstance(spec.get("maxReplicas"), int) and spec["minReplicas"] > spec["maxReplicas"]:
        raise ManifestError(f"minReplicas {spec['minReplicas']} is above maxReplicas {spec['maxReplicas']}")
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise ManifestError(f"the HPA does not match the Kubernetes {KUBERNETES_VERSION} schema: {str(exc).splitlines()[0]}") from None


def to_yaml(manifest: dict[str, Any]) -> str:
    validate(manifest)
    return yaml.safe_dump(manifest, sort_keys=False)
