"""Rate shapes (the open model): iterations arrive at a planned rate whatever the target does.

A rate shape is piecewise linear in time: `segments()` lists (start, end, rate at start,
rate at end). The arrival times follow from the cumulative rate Lambda(t): the k-th
arrival is at Lambda^-1(k) (uniform) or at Lambda^-1(E1 + ... + Ek) with Exp(1) gaps
(Poisson: a non-homogeneous Poisson process by time change), so both keep the planned
rate as it ramps or steps. Everything here is pure; `loadwise.engine.arrivals` starts
iterations at these times.

Distributed runs split one plan: every worker draws the same global arrivals (same seed)
and keeps those whose index is its share modulo the worker count, so the merged arrivals
are exactly the planned process, whatever the rate or the arrival law.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from loadwise.durations import parse_duration
from loadwise.shapes.base import Shape, ShapeError

ARRIVAL_LAWS = ("uniform", "poisson")
DEFAULT_MAX_LATENESS_S = 10.0
LATE_AFTER_MS = 10.0  # an iteration that starts this much after its scheduled time counts as late
Segment = tuple[float, float, float, float]  # (start s, end s, rate at start, rate at end)


@dataclass(frozen=True)
class ArrivalOptions:
    """What every rate shape takes besides its own parameters (each default declared here once)."""

    rate: float | None = None  # iterations per second (the peak for ramping-rate and step-rate)
    max_users: int | None = None  # the user pool's maximum (default: 10 x --users)
    arrivals: str = "uniform"
    seed: int | None = None  # Poisson's random seed (loadwise run picks one and records it)
    max_lateness_s: float = DEFAULT_MAX_LATENESS_S  # an arrival not started by then is dropped


@dataclass(frozen=True)
class RateShape(Shape):
    """A rate shape: `users` is the pre-spawned user pool; the pool grows up to `max_users`
    while arrivals wait for a free user. The ArrivalOptions fields, with their defaults."""

    rate: float | None = ArrivalOptions.rate
    max_users: int | None = ArrivalOptions.max_users
    arrivals: str = ArrivalOptions.arrivals
    seed: int | None = ArrivalOptions.seed
    max_lateness_s: float = ArrivalOptions.max_lateness_s

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rate is None:
            raise ShapeError(f"{self.name} needs --rate R (iterations per second)")
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ShapeError(f"{self.name}: rate must be a positive number (got {self.rate:g})")
        if self.max_users is not None and self.max_users < self.users:
            raise ShapeError(f"{self.name}: --max-users {self.max_users} is below the pre-spawned pool --users {self.users}")
        if self.arrivals not in ARRIVAL_LAWS:
            raise ShapeError(f"{self.name}: arrivals must be one of {', '.join(ARRIVAL_LAWS)} (got {self.arrivals!r})")
        if self.max_lateness_s < 0:
            raise ShapeError(f"{self.name}: the lateness bound must not be negative")

    @property
    def pool_max(self) -> int:
        return self.max_users if self.max_users is not None else 10 * self.users

    def segments(self) -> list[Segment]:
        raise NotImplementedError

    def rate_at(self, t: float) -> float:
        for start, end, r0, r1 in self.segments():
            if start <= t < end:
                return r0 + (r1 - r0) * (t - start) / (end - start)
        return 0.0

    def planned(self, until_s: float | None = None) -> float:
        """Arrivals the plan holds up to `until_s` (default: the whole run): Lambda(t)."""
        until = self.duration_s if until_s is None else min(until_s, self.duration_s)
        total = 0.0
        for start, end, r0, r1 in self.segments():
            if until <= start:
                break
            d = min(until, end) - start
            total += r0 * d + (r1 - r0) / (end - start) * d * d / 2
        return total

    def users_at(self, t: float) -> int:
        return self.users  # the pre-spawned pool; loadwise.engine.arrivals grows it as arrivals need

    def arrival_times(self, share: int = 0, of: int = 1, seed: int | None = None) -> Iterator[float]:
        """Seconds from the start of the run at which this share's iterations are scheduled, in order."""
        import numpy as np  # not at import: every --help lists the shapes

        marks = self._cumulative_marks(np.random.default_rng(self.seed if seed is None else seed))
        mark, k, done = next(marks), 0, 0.0
        for start, end, r0, r1 in self.segments():  # walked once: the generator keeps up with high rates
            d = end - start
            area, a = (r0 + r1) / 2 * d, (r1 - r0) / (2 * d)
            while mark < done + area:
                # Lambda^-1 inside the segment: solve a*x^2 + r0*x = y in the form that stays exact as a -> 0.
                y = mark - done
                root = math.sqrt(max(r0 * r0 + 4 * a * y, 0.0))
                if k % of == share:
                    yield start + (2 * y / (r0 + root) if r0 + root > 0 else 0.0)
                k += 1
                mark = next(marks)
            done += area

    def _cumulative_marks(self, rng: Any) -> Iterator[float]:
        if self.arrivals == "uniform":
            k = 0
            while True:
                yield float(k)
                k += 1
        level = 0.0
        while True:
            for gap in rng.exponential(1.0, 4096).tolist():
                level += gap
                yield level


@dataclass(frozen=True)
class ConstantRate(RateShape):
    name: ClassVar[str] = "constant-rate"
    help: ClassVar[str] = "RATE iterations per second for the whole run (open model)"

    def segments(self) -> list[Segment]:
        return [(0.0, self.duration_s, float(self.rate), float(self.rate))]


@dataclass(frozen=True)
class RampingRate(RateShape):
    start_rate: float = 0.0
    stages: str = ""
    name: ClassVar[str] = "ramping-rate"
    help: ClassVar[str] = (
        "the rate moves linearly from start_rate (default 0) through stages 'DURATION:RATE,...' "
        "(default: one stage to RATE over the run), as k6's ramping-arrival-rate"
    )

    def __post_init__(self) -> None:
        stages = _parse_stages(self.stages) if self.stages else []
        peak = max([self.start_rate, *(rate for _, rate in stages)])
        if self.rate is None and stages:  # the stages say the peak
            object.__setattr__(self, "rate", peak)
        super().__post_init__()
        if self.start_rate < 0:
            raise ShapeError("ramping-rate: start_rate must not be negative")
        if peak > float(self.rate):  # type: ignore[arg-type]
            raise ShapeError(f"ramping-rate: the stages reach {peak:g}/s, above --rate {self.rate:g} (the peak)")

    def segments(self) -> list[Segment]:
        stages = _parse_stages(self.stages) if self.stages else [(self.duration_s, float(self.rate))]
        out, t, level = [], 0.0, float(self.start_rate)
        for length, target in stages:
            if t >= self.duration_s:
                break
            end = min(t + length, self.duration_s)
            out.append((t, end, level, level + (target - level) * (end - t) / length))
            t, level = end, target
        if t < self.duration_s:  # the run outlasts the stages: hold the last rate
            out.append((t, self.duration_s, level, level))
        return out


@dataclass(frozen=True)
class StepRate(RateShape):
    steps: int = 5
    name: ClassVar[str] = "step-rate"
    help: ClassVar[str] = (
        "steps (default 5) equal steps of rate up to RATE, each held DURATION/steps: the capacity run of the open model"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps < 1:
            raise ShapeError(f"step-rate: steps must be at least 1 (got {self.steps})")

    @property
    def step_s(self) -> float:
        return self.duration_s / self.steps

    def step_rate(self, k: int) -> float:
        """The offered rate of step k (0-based)."""
        return float(self.rate) * (k + 1) / self.steps

    def segments(self) -> list[Segment]:
        return [(k * self.step_s, (k + 1) * self.step_s, self.step_rate(k), self.step_rate(k)) for k in range(self.steps)]


RATE_SHAPES: tuple[type[RateShape], ...] = (ConstantRate, RampingRate, StepRate)
RATE_SHAPE_NAMES = frozenset(cls.name for cls in RATE_SHAPES)


def _parse_stages(text: str) -> list[tuple[float, float]]:
    """'30s:100,1m:400' -> [(30.0, 100.0), (60.0, 400.0)]."""
    stages = []
    for item in text.split(","):
        length, sep, rate = item.strip().partition(":")
        try:
            stage = (parse_duration(length), float(rate))
        except ValueError:
            stage = None
        if not sep or stage is None or stage[0] <= 0 or not (math.isfinite(stage[1]) and stage[1] >= 0):
            raise ShapeError(f"ramping-rate: stage {item.strip()!r} is not DURATION:RATE (e.g. 30s:100)")
        stages.append(stage)
    return stages
