"""The chosen shape in Locust: `--shape` as Locust's `LoadTestShape`, and when the run planned to end.

The shapes themselves are pure (loadwise.shapes); a locustfile's own LoadTestShape, when
it runs instead, is Locust's and is only asked whether it has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from locust import LoadTestShape
from locust.env import Environment

from loadwise.engine.options import arrival_options
from loadwise.shapes.base import Shape, ShapeError
from loadwise.shapes.catalog import AUTO_SHAPE, DEFAULT_DURATION_S, build_shape, parse_shape_params
from loadwise.shapes.rates import RateShape


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


def own_shape(env: Environment) -> Any:
    """The locustfile's own LoadTestShape instance, when that is what runs."""
    shape = env.shape_class
    return shape if shape is not None and not isinstance(shape, LoadwiseShape) else None


def chosen_shape(env: Environment) -> Shape | None:
    """The --shape as configured (auto: constant, unless the locustfile's own shape runs)."""
    opts = env.parsed_options
    if not opts.shape or own_shape(env) is not None:
        return None
    auto = opts.shape == AUTO_SHAPE
    run_time = opts.run_time or (DEFAULT_DURATION_S if auto else None)
    if not run_time:
        raise ShapeError("--shape needs a run time (-t/--run-time)")
    return build_shape("constant" if auto else opts.shape, opts.num_users or 1, float(run_time), opts.spawn_rate,
                       parse_shape_params(opts.shape_param), arrival_options(opts))  # fmt: skip


def _own_shape_ended(env: Environment) -> bool:
    """Whether the locustfile's shape has nothing more to run (its tick says None now)."""
    shape = own_shape(env)
    if shape is None:
        return False
    try:
        return shape.tick() is None
    except Exception:  # a shape that cannot be asked again: not known to have ended
        return False


def planned_end_reached(env: Environment, elapsed_s: float) -> bool:
    """Whether the load ran to its planned end: the shape finished, or the run time (-t) passed
    (give or take Locust's second), or the locustfile's own shape has nothing more to run."""
    run_time = env.parsed_options.run_time
    return (bool(getattr(env.shape_class, "finished", False)) or bool(run_time and elapsed_s >= run_time - 1.0)
            or _own_shape_ended(env))  # fmt: skip
