"""The chosen loadwise shape as Locust's `LoadTestShape` (the shapes themselves are pure: scenarios/shapes.py)."""

from __future__ import annotations

from collections.abc import Callable

from locust import LoadTestShape

from loadwise.scenarios.rates import RateShape
from loadwise.scenarios.shapes import Shape, ShapeError


class LoadwiseShape(LoadTestShape):
    """Locust's view of the shape chosen with --shape; `loadwise.engine.plugin` configures it at init."""

    use_common_options = True
    finished: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.shape: Shape | None = None
        self.pool: Callable[[], tuple[int, float]] | None = None

    def configure(self, shape: Shape, pool: Callable[[], tuple[int, float]] | None = None) -> None:
        """`pool` (rate shapes): the user pool the arrivals need now, and the spawn rate to reach it."""
        self.shape, self.pool = shape, pool

    def tick(self) -> tuple[int, float] | None:
        if self.shape is None:
            raise ShapeError("LoadwiseShape was not configured (is the loadwise plugin loaded?)")
        step = self.shape.tick(self.get_run_time())
        if step is None:
            self.finished = True
        elif isinstance(self.shape, RateShape) and self.pool is not None:
            return self.pool()
        return step
