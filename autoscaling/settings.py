"""The settings of `loadwise advise hpa`, each default declared once (light: read by every --help)."""

from __future__ import annotations

from dataclasses import dataclass

from loadwise.settings import option


@dataclass
class HpaSettings:
    """`loadwise advise hpa` options."""

    violation_budget: float = option(0.001, "share of the trace the SLO may be broken", flag="--budget", parse="fraction")
    memory_margin: float = option(0.3, "memory request and limit above the peak resident memory per pod under load",
                                  parse="fraction")
    targets: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # CPU utilization targets searched
    max_replicas_cap: int = 200
