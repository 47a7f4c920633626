"""The settings of `loadwise advise hpa`, each default declared once (light: read by every --help)."""

from __future__ import annotations

from dataclasses import dataclass

from loadwise.settings import option

KUBERNETES_CPU_TARGET = 0.8  # an HPA without metrics scales on 80 % CPU utilization (Kubernetes' default)
CPU_REQUEST = 0.5  # cores a pod requests when neither the cluster nor --cpu-request says
STARTUP_S = 30.0  # from a pod's creation to serving traffic, when not given
TRACES = ("diurnal", "spike", "ramp", "run")


@dataclass
class HpaSettings:
    """`loadwise advise hpa` options: the load to replay, what the run measured (or overrides of
    it), the settings in use today, and the search."""

    trace: str = option("spike", f"{', '.join(TRACES[:-1])}, run (this run's own load), or FILE.csv (timestamp,rps)",
                        parse="str", metavar="TRACE")  # fmt: skip
    peak_rps: float | None = option(None, "peak of the synthetic traces (default: 10 pods at capacity)", parse="positive")
    capacity_rps: float | None = option(None, "SLO-bound requests/s per pod (default: from `loadwise capacity`)",
                                        parse="positive")  # fmt: skip
    cpu_per_request: float | None = option(None, "CPU seconds per request (default: measured by the collector)",
                                           parse="positive")  # fmt: skip
    cpu_request: float = option(CPU_REQUEST, "CPU cores each pod requests (the cluster's, with --deployment)", parse="positive")
    startup: float = option(STARTUP_S, "pod start-up time before serving", parse="duration")
    current_min: int = option(1, "current minReplicas (or read from the cluster)", parse="int")
    current_max: int = option(20, "current maxReplicas (or read from the cluster)", parse="int")
    current_target: float = option(KUBERNETES_CPU_TARGET, "current CPU utilization target (or read from the cluster)",
                                   parse="fraction")  # fmt: skip
    violation_budget: float = option(0.001, "share of the trace the SLO may be broken", flag="--budget", parse="fraction")
    memory_margin: float = option(0.3, "memory request and limit above the peak resident memory per pod under load",
                                  parse="fraction")
    targets: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # CPU utilization targets searched
    max_replicas_cap: int = 200
