"""The one Kubernetes client: configuration, namespace, and API errors as one line.

`k8s follow|fetch` and `advise hpa` both connect through `connect()`: the in-cluster
service account when there is one, else the kubeconfig ($KUBECONFIG, read at call time,
or ~/.kube/config) and its `--context`; the namespace defaults to the context's.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadwise.errors import EXIT_FAILED, LoadwiseError

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class K8sError(LoadwiseError):
    """A one-line reason why the cluster could not be read, followed or written to."""


class MasterFailed(K8sError):
    """The master Job failed or its pod was evicted: the run itself failed (exit code 1)."""

    exit_code = EXIT_FAILED


@dataclass
class Connection:
    api: Any  # kubernetes.client.ApiClient
    namespace: str
    host: str

    def call(self, what: str, fn: Callable[..., Any], *args: Any, needs: str = "", **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)` with API and network errors as K8sError; `needs` names the RBAC a 403 lacks."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise K8sError(f"{what}: {api_reason(exc, self.namespace, needs)}") from None
        except HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            reason = getattr(reason, "reason", None) or reason  # urllib3 wraps the socket error twice
            raise K8sError(f"{what}: cannot reach the Kubernetes API at {self.host}: {reason}") from None


def connect(namespace: str | None = None, context: str | None = None) -> Connection:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
        default_ns = IN_CLUSTER_NAMESPACE.read_text().strip()
    except config.ConfigException:
        try:
            # The client reads $KUBECONFIG once, when it is imported; read it now.
            path = os.environ.get("KUBECONFIG") or None
            config.load_kube_config(config_file=path, context=context)
            contexts, active = config.list_kube_config_contexts(config_file=path)
            active = next((c for c in contexts if c.get("name") == context), active) if context else active
        except (config.ConfigException, OSError, TypeError, ValueError) as exc:
            raise K8sError(f"no Kubernetes configuration: {exc}") from None
        default_ns = active.get("context", {}).get("namespace", "default")
    return Connection(client.ApiClient(), namespace or default_ns, client.Configuration.get_default_copy().host)


def api_reason(exc: Any, namespace: str, needs: str = "") -> str:
    """An ApiException in one line: the API's own message, and for 403 what the account needs."""
    try:
        message = json.loads(exc.body or "{}").get("message") or exc.reason
    except (ValueError, AttributeError):
        message = exc.reason
    if exc.status == 403:
        return f"forbidden ({message})" + (f"; the account needs {needs} in namespace {namespace!r}" if needs else "")
    if exc.status == 401:
        return f"unauthorized ({message}): check the kubeconfig's credentials"
    if exc.status == 404:
        return f"not found ({message})"
    if exc.status == 0:  # the WebSocket of an exec: the HTTP status is only in the text
        handshake = re.search(r"Handshake status (\d{3})", str(exc.reason))
        if handshake and handshake.group(1) in ("401", "403", "404"):
            # websocket-client's text: "Handshake status 403 Forbidden -+-+- {headers} -+-+- BODY"
            exc.status, exc.body = int(handshake.group(1)), str(exc.reason).split("-+-+-")[-1].strip()
            return api_reason(exc, namespace, needs)
        return f"cannot reach the Kubernetes API: {exc.reason}"
    return f"HTTP {exc.status}: {message}"
