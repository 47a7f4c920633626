"""The chosen loadwise shape as Locust's `LoadTestShape` (the shapes themselves are pure: scenarios/shapes.py)."""

from __future__ import annotations

from locust import LoadTestShape

from loadwise.scenarios.shapes import Shape, ShapeError


class LoadwiseShape(LoadTestShape):
    """Locust's view of the shape chosen with --shape; `loadwise.engine.plugin` configures it at init."""

    use_common_options = True
    finished: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.shape: Shape | None = None

    def configure(self, shape: Shape) -> None:
        self.shape = shape

    def tick(self) -> tuple[int, float] | None:
        if self.shape is None:
            raise ShapeError("LoadwiseShape was not configured (is the loadwise plugin loaded?)")
        step = self.shape.tick(self.get_run_time())
        if step is None:
            self.finished = True
        return step
