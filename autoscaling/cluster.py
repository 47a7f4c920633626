"""The HPA and Deployment in use, read with the `kubernetes` client (kubeconfig or in-cluster)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadwise.autoscaling.hpa import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, HPASpec, Policy, ScalingRules


class ClusterError(Exception):
    """The cluster could not be read; one line saying what and why."""


@dataclass
class ClusterState:
    hpa: HPASpec | None
    replicas: int
    cpu_request: float | None  # cores, of the first container that requests CPU


def api_client(host: str | None = None) -> Any:
    from kubernetes import client, config

    if host:  # an explicit API URL (and, in tests, a local server answering for one)
        configuration = client.Configuration()
        configuration.host = host
        return client.ApiClient(configuration)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except Exception as exc:
            raise ClusterError(f"no Kubernetes configuration: {exc}") from None
    return client.ApiClient()


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


def read(namespace: str, deployment: str, host: str | None = None) -> ClusterState:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = api_client(host)
    try:
        dep = client.AppsV1Api(api).read_namespaced_deployment(deployment, namespace)
    except ApiException as exc:
        raise ClusterError(_explain(exc, f"deployment {namespace}/{deployment}")) from None
    except Exception as exc:  # connection refused, TLS, DNS
        raise ClusterError(f"cannot reach the Kubernetes API: {str(exc).splitlines()[0][:200]}") from None
    cpu = None
    for container in dep.spec.template.spec.containers or []:
        requests = (container.resources.requests or {}) if container.resources else {}
        cpu = _cpu(requests.get("cpu"))
        if cpu:
            break
    hpa = None
    try:
        raw = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(deployment, namespace)
        metric, target = "cpu", 0.8
        for m in raw.spec.metrics or []:
            if m.type == "Resource" and m.resource.name == "cpu" and m.resource.target.average_utilization:
                metric, target = "cpu", m.resource.target.average_utilization / 100
            elif m.type == "Pods" and m.pods.target.average_value:
                metric, target = "rps", float(m.pods.target.average_value)
        behavior = raw.spec.behavior
        hpa = HPASpec(raw.spec.min_replicas or 1, raw.spec.max_replicas, metric, target,
                      _rules(behavior.scale_up if behavior else None, DEFAULT_SCALE_UP),
                      _rules(behavior.scale_down if behavior else None, DEFAULT_SCALE_DOWN))  # fmt: skip
    except ApiException as exc:
        if exc.status != 404:
            raise ClusterError(_explain(exc, f"HPA {namespace}/{deployment}")) from None
    return ClusterState(hpa, int(dep.spec.replicas or 1), cpu)


def _explain(exc: Any, what: str) -> str:
    if exc.status == 404:
        return f"{what} not found"
    if exc.status == 403:
        return f"forbidden to read {what}: the service account needs get on it"
    return f"reading {what} failed: HTTP {exc.status} {exc.reason}"


def apply_hpa(manifest: dict[str, Any], namespace: str, host: str | None = None, for_real: bool = False) -> list[str]:
    """Server-side dry run of the HPA (create or replace); then, if `for_real`, the change.
    Returns what was done, one line each."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = client.AutoscalingV2Api(api_client(host))
    name = manifest["metadata"]["name"]
    done = []
    for dry in (True, False) if for_real else (True,):
        mode = {"dry_run": "All"} if dry else {}
        try:
            try:
                api.read_namespaced_horizontal_pod_autoscaler(name, namespace)
                api.replace_namespaced_horizontal_pod_autoscaler(name, namespace, manifest, field_manager="loadwise", **mode)
                verb = "replaced"
            except ApiException as exc:
                if exc.status != 404:
                    raise
                api.create_namespaced_horizontal_pod_autoscaler(namespace, manifest, field_manager="loadwise", **mode)
                verb = "created"
        except ApiException as exc:
            raise ClusterError(_explain(exc, f"HPA {namespace}/{name}") + (" (dry run)" if dry else "")) from None
        done.append(f"HPA {namespace}/{name} {verb}" + (" (server-side dry run: accepted)" if dry else ""))
    return done
