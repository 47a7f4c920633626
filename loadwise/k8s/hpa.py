"""`advise hpa`'s cluster side: read the HPA and Deployment in use, send the recommended HPA."""

from __future__ import annotations

from typing import Any

from loadwise.autoscaling.cluster import ClusterState, cluster_state
from loadwise.k8s.client import K8sError, connect

RBAC_NEEDED = "get on deployments and horizontalpodautoscalers (and create/update on horizontalpodautoscalers for --apply)"


def read(deployment: str, namespace: str | None = None, context: str | None = None) -> ClusterState:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    conn = connect(namespace, context)
    dep = conn.call(f"reading deployment {conn.namespace}/{deployment}", client.AppsV1Api(conn.api).read_namespaced_deployment,
                    deployment, conn.namespace, needs=RBAC_NEEDED)  # fmt: skip
    try:
        hpa = client.AutoscalingV2Api(conn.api).read_namespaced_horizontal_pod_autoscaler(deployment, conn.namespace)
    except ApiException as exc:
        if exc.status != 404:  # no HPA yet is an answer, not an error
            conn.call(f"reading HPA {conn.namespace}/{deployment}", _raise, exc, needs=RBAC_NEEDED)
        hpa = None
    return cluster_state(dep, hpa)


def _raise(exc: Exception) -> None:
    raise exc


def apply_hpa(manifest: dict[str, Any], namespace: str | None = None, context: str | None = None,
              for_real: bool = False) -> list[str]:  # fmt: skip
    """Server-side dry run of the HPA (create or replace); then, if `for_real`, the change.
    Returns what was done, one line each."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    conn = connect(namespace, context)
    api = client.AutoscalingV2Api(conn.api)
    name, ns = manifest["metadata"]["name"], conn.namespace
    done = []
    for dry in (True, False) if for_real else (True,):
        mode = {"dry_run": "All"} if dry else {}

        def send() -> str:
            try:
                api.read_namespaced_horizontal_pod_autoscaler(name, ns)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                api.create_namespaced_horizontal_pod_autoscaler(ns, manifest, field_manager="loadwise", **mode)
                return "created"
            api.replace_namespaced_horizontal_pod_autoscaler(name, ns, manifest, field_manager="loadwise", **mode)
            return "replaced"

        verb = conn.call(f"HPA {ns}/{name}" + (" (dry run)" if dry else ""), send, needs=RBAC_NEEDED)
        done.append(f"HPA {ns}/{name} {verb}" + (" (server-side dry run: accepted)" if dry else ""))
    return done


__all__ = ["K8sError", "apply_hpa", "read"]
