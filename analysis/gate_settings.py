"""The settings of `loadwise gate`, each default declared once (light: read by every --help)."""

from __future__ import annotations

from dataclasses import dataclass

from loadwise.settings import option

MIN_DELTA_MS = 2.0  # latency changes smaller than this are noise between runs, whatever their ratio
MIN_EFFECT = 0.05


@dataclass
class GateSettings:
    """`loadwise gate` options."""

    window: str = option("all", "the whole run or its last step", parse="str", choices=("all", "last-step"))
    warmup: float = option(0.0, "leave out this much of the start, e.g. 10s", parse="duration", shown="none")
    min_effect: float = option(MIN_EFFECT, "smallest change called a regression", parse="fraction")
    min_delta: float = option(MIN_DELTA_MS, "smallest latency change called a regression", parse="ms")
    resamples: int = option(1000, "bootstrap resamples", parse="int")
