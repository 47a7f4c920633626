"""The settings of `loadwise gate`, each default declared once (light: read by every --help)."""

from __future__ import annotations

from dataclasses import dataclass

from loadwise.errors import UsageError
from loadwise.settings import option

MIN_DELTA_MS = 2.0  # latency changes smaller than this are noise between runs, whatever their ratio
MIN_EFFECT = 0.05  # smaller relative changes are not called regressions
RESAMPLES = 1000  # bootstrap resamples of a one-baseline comparison


@dataclass
class GateSettings:
    """`loadwise gate` options."""

    window: str = option("all", "the whole run or its last step", parse="str", choices=("all", "last-step"))
    warmup: float = option(0.0, "leave out this much of the start, e.g. 10s", parse="duration", shown="none")
    min_effect: float = option(MIN_EFFECT, "smallest change called a regression", parse="fraction")
    min_delta: float = option(MIN_DELTA_MS, "smallest latency change called a regression", parse="ms")
    resamples: int = option(RESAMPLES, "bootstrap resamples (at least 100)", parse="int")

    def __post_init__(self) -> None:
        if self.resamples < 100:  # fewer cannot place a 99 % interval's ends
            raise UsageError("--resamples must be at least 100")
