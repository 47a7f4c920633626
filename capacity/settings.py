"""The settings of `loadwise capacity` and `loadwise advise alerts`: each default declared once.

Light on purpose (no numpy, no pandas): the CLI builds its options from these classes
for every `--help`.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadwise.settings import option


@dataclass
class CapacitySettings:
    """`loadwise capacity` options."""

    slo_ms: float | None = None  # latency SLO on `slo_statistic` (from --slo or the profile)
    slo_statistic: str = "p95"
    target_rps: float | None = option(None, "load to plan replicas for (requests/s)", parse="positive")
    margin: float = option(0.30, "safety margin on top of the target", parse="float")
    knee_fraction: float = option(0.5, "knee: where one more user adds less than this share of the first user's throughput")
    replicas_in_run: int = option(1, "instances that served the run", parse="int")
    model: str = option("auto", "auto keeps the simplest model the data do not clearly reject (extra-sum-of-squares F-test)", parse="str",
                        choices=("auto", "usl", "amdahl", "linear"))


@dataclass
class AlertSettings:
    """`loadwise advise alerts` options."""

    selector: str = ""  # label matchers for every series, e.g. '{job="shop"}' (default: the profile's job)
    pod_label: str = option("pod", "label that tells the replicas apart", parse="str", metavar="LABEL")
    capacity_fraction: float = option(0.8, "warn when a pod serves this share of its SLO-bound capacity",
                                      parse="fraction", metavar="SHARE")
    replicas_in_run: int = 1  # instances that served the run: capacity per pod = measured / replicas
    rate_window: str = "5m"
    capacity_for: str = "5m"
    slo_for: str = "10m"

    def check(self) -> list[str]:
        """The selector's matchers, normalized; AlertError names the bad setting."""
        from loadwise.capacity.alerts import check_settings

        return check_settings(self)
