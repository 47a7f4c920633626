"""Closed-model shapes: how many users are active at each second of a run.

Each shape is a small frozen dataclass whose `users_at(t)` is a pure function of the
elapsed time, so it can be tested (and listed by `--help`) without importing Locust;
`loadwise.engine.shape.LoadwiseShape` adapts the chosen one to Locust's `LoadTestShape`.
Every shape shares `users` (the peak), `duration_s` and `spawn_rate`; shape-specific
parameters are the other dataclass fields and come from `--shape-param KEY=VALUE`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from loadwise.shapes.base import Shape, ShapeError


@dataclass(frozen=True)
class Constant(Shape):
    name: ClassVar[str] = "constant"
    help: ClassVar[str] = "USERS users for the whole run (reached at SPAWN_RATE, default USERS/10 per second)"

    def users_per_s(self) -> float:
        return self.spawn_rate if self.spawn_rate is not None else max(self.users / 10.0, 1.0)

    def users_at(self, t: float) -> int:
        return self.users


@dataclass(frozen=True)
class Ramp(Shape):
    start_users: int = 1
    name: ClassVar[str] = "ramp"
    help: ClassVar[str] = "linear from start_users (default 1) to USERS over the run"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.start_users <= self.users:
            raise ShapeError(f"ramp: start_users must be between 0 and users={self.users}")

    def users_at(self, t: float) -> int:
        return round(self.start_users + (self.users - self.start_users) * min(t / self.duration_s, 1.0))


@dataclass(frozen=True)
class Step(Shape):
    steps: int = 5
    name: ClassVar[str] = "step"
    help: ClassVar[str] = "steps (default 5) equal steps up to USERS, each held DURATION/steps (capacity runs)"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.steps <= self.users:
            raise ShapeError(f"step: steps must be between 1 and users={self.users} (got {self.steps})")

    @property
    def step_s(self) -> float:
        return self.duration_s / self.steps

    def step_at(self, t: float) -> int:
        """0-based index of the step running at t."""
        return min(int(t // self.step_s), self.steps - 1)

    def users_at(self, t: float) -> int:
        return round(self.users * (self.step_at(t) + 1) / self.steps)


@dataclass(frozen=True)
class Spike(Shape):
    base_users: int | None = None
    at_s: float | None = None
    spike_s: float | None = None
    name: ClassVar[str] = "spike"
    help: ClassVar[str] = (
        "base_users (default USERS/5) with a spike to USERS at at_s (default 40% of the run) for spike_s (default 20%)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.base_users is not None and not 0 <= self.base_users <= self.users:
            raise ShapeError(f"spike: base_users must be between 0 and users={self.users}")
        if self.at_s is not None and not 0 <= self.at_s < self.duration_s:
            raise ShapeError("spike: at_s must fall inside the run")
        if self.spike_s is not None and self.spike_s <= 0:
            raise ShapeError("spike: spike_s must be positive")

    def users_at(self, t: float) -> int:
        base = self.base_users if self.base_users is not None else max(self.users // 5, 1)
        start = self.at_s if self.at_s is not None else 0.4 * self.duration_s
        length = self.spike_s if self.spike_s is not None else 0.2 * self.duration_s
        return self.users if start <= t < start + length else base


@dataclass(frozen=True)
class Soak(Shape):
    ramp_s: float | None = None
    name: ClassVar[str] = "soak"
    help: ClassVar[str] = "ramp up over ramp_s (default 10% of the run, at most 300 s), then hold USERS"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ramp_s is not None and not 0 <= self.ramp_s < self.duration_s:
            raise ShapeError("soak: ramp_s must be shorter than the run")

    def users_at(self, t: float) -> int:
        ramp = self.ramp_s if self.ramp_s is not None else min(0.1 * self.duration_s, 300.0)
        if ramp <= 0 or t >= ramp:
            return self.users
        return max(1, round(self.users * t / ramp))


@dataclass(frozen=True)
class Diurnal(Shape):
    min_users: int | None = None
    periods: float = 1.0
    name: ClassVar[str] = "diurnal"
    help: ClassVar[str] = (
        "a day compressed into the run: a cosine from min_users (default USERS/10) up to USERS and back, periods times"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_users is not None and not 0 <= self.min_users <= self.users:
            raise ShapeError(f"diurnal: min_users must be between 0 and users={self.users}")
        if self.periods <= 0:
            raise ShapeError("diurnal: periods must be positive")

    def users_at(self, t: float) -> int:
        low = self.min_users if self.min_users is not None else max(self.users // 10, 1)
        phase = 2 * math.pi * self.periods * t / self.duration_s
        return round(low + (self.users - low) * (1 - math.cos(phase)) / 2)


CLOSED_SHAPES: tuple[type[Shape], ...] = (Constant, Ramp, Step, Spike, Soak, Diurnal)
