"""What every load shape shares: users (the peak, or a rate shape's pre-spawned pool), the
run's duration and the spawn rate; `tick` is what Locust's LoadTestShape asks each second."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from loadwise.errors import LoadwiseError


class ShapeError(LoadwiseError, ValueError):
    """Bad shape name or parameters; the message names the bad input."""


@dataclass(frozen=True)
class Shape:
    users: int
    duration_s: float
    spawn_rate: float | None = None

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ShapeError(f"{self.name}: users must be at least 1 (got {self.users})")
        if self.duration_s <= 0:
            raise ShapeError(f"{self.name}: duration must be positive (got {self.duration_s:g}s)")
        if self.spawn_rate is not None and self.spawn_rate <= 0:
            raise ShapeError(f"{self.name}: spawn rate must be positive (got {self.spawn_rate:g})")

    def users_at(self, t: float) -> int:
        raise NotImplementedError

    def users_per_s(self) -> float:
        """Users started per second; by default fast enough to follow the shape within ~1 s."""
        return self.spawn_rate if self.spawn_rate is not None else float(max(self.users, 1))

    def tick(self, t: float) -> tuple[int, float] | None:
        if t >= self.duration_s:
            return None
        return self.users_at(t), self.users_per_s()

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
