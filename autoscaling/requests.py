"""Container requests consistent with the HPA: what each pod should ask for, from the load test.

The HPA's CPU target is a share of the pod's CPU *request*, so a target means nothing
until the request is right; tools that size requests from usage alone (robusta KRR) skip
autoscaled workloads for that reason. A load test measures both sides, so loadwise sets:

- CPU request = the CPU a pod burns at its SLO-bound capacity (idle + capacity x CPU
  seconds per request), rounded up to 10 millicores: 100 % utilization then means "at
  capacity", and the HPA target reads as the share of capacity at which to scale;
- memory request = limit = the peak resident memory per pod under load plus a margin,
  rounded up to 16 MiB (request = limit: the pod is never OOM-killed for using what the
  scheduler promised it).
Pure: figures in, a recommendation carrying its evidence out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024
CPU_STEP_M = 10
MEMORY_STEP = 16 * MIB


@dataclass(frozen=True)
class ResourcesRecommendation:
    cpu_request: float  # cores
    memory_bytes: int | None  # request and limit; None when the run measured no memory
    evidence: dict[str, Any]

    def patch(self, deployment: str, container: str | None = None) -> dict[str, Any]:
        """A strategic-merge patch for the Deployment's container (`kubectl patch --type strategic`)."""
        resources: dict[str, Any] = {"requests": {"cpu": f"{round(self.cpu_request * 1000)}m"}}
        if self.memory_bytes is not None:
            memory = f"{self.memory_bytes // MIB}Mi"
            resources["requests"]["memory"] = memory
            resources["limits"] = {"memory": memory}
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": deployment},
                "spec": {"template": {"spec": {"containers": [{"name": container or deployment, "resources": resources}]}}}}  # fmt: skip


def recommend_resources(capacity_rps: float, cpu_per_request: float, idle_cpu: float, peak_memory_bytes: float | None,
                        memory_margin: float) -> ResourcesRecommendation:  # fmt: skip
    at_capacity = idle_cpu + capacity_rps * cpu_per_request
    cpu = math.ceil(at_capacity * 1000 / CPU_STEP_M) * CPU_STEP_M / 1000
    memory = None
    if peak_memory_bytes and peak_memory_bytes > 0:
        memory = math.ceil(peak_memory_bytes * (1 + memory_margin) / MEMORY_STEP) * MEMORY_STEP
    evidence = {"capacity_rps_per_pod": capacity_rps, "cpu_per_request_s": cpu_per_request, "idle_cpu_cores": idle_cpu,
                "cpu_at_capacity_cores": round(at_capacity, 4), "peak_memory_bytes_per_pod": peak_memory_bytes,
                "memory_margin": memory_margin}  # fmt: skip
    return ResourcesRecommendation(cpu, memory, evidence)
