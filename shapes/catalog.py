"""The shapes by name (`--shape NAME`), their parameters, and building one from the command line's values."""

from __future__ import annotations

import dataclasses
from typing import Any

from loadwise.shapes.base import Shape, ShapeError
from loadwise.shapes.closed import CLOSED_SHAPES
from loadwise.shapes.rates import RATE_SHAPES, ArrivalOptions, RateShape

SHAPES: dict[str, type[Shape]] = {cls.name: cls for cls in (*CLOSED_SHAPES, *RATE_SHAPES)}
AUTO_SHAPE = "auto"  # the locustfile's own LoadTestShape if it has one, else constant
DEFAULT_DURATION_S = 60.0  # the length of a loadwise shape when no run time is given
_COMMON = {"users", "duration_s", "spawn_rate", *(f.name for f in dataclasses.fields(ArrivalOptions))}


def shape_parameters(cls: type[Shape]) -> dict[str, str]:
    """The shape-specific parameters and their types, for --help and validation."""
    return {f.name: str(f.type) for f in dataclasses.fields(cls) if f.name not in _COMMON}


def _convert(shape: str, key: str, type_name: str, raw: str) -> Any:
    if type_name == "str":
        return raw
    target = float if "float" in type_name else int
    try:
        value = float(raw)
        if target is int and value != int(value):
            raise ValueError
        return target(value)
    except ValueError:
        raise ShapeError(f"{shape}: {key}={raw!r} is not a{'n integer' if target is int else ' number'}") from None


def build_shape(
    name: str, users: int, duration_s: float, spawn_rate: float | None = None, params: dict[str, str] | None = None,
    arrivals: ArrivalOptions | None = None,
) -> Shape:
    """Validate and build a shape; raises ShapeError naming the bad input. `arrivals` (--rate,
    --max-users, --arrivals ...) applies to the rate shapes only."""
    cls = SHAPES.get(name)
    if cls is None:
        raise ShapeError(f"unknown shape {name!r}; choose one of: {', '.join(SHAPES)}")
    arrivals = arrivals or ArrivalOptions()
    if not issubclass(cls, RateShape) and arrivals.rate is not None:
        rate_shapes = ", ".join(c.name for c in RATE_SHAPES)
        raise ShapeError(f"--rate applies to the rate shapes ({rate_shapes}), not to {name}, which sets users")
    allowed = shape_parameters(cls)
    kwargs: dict[str, Any] = {}
    for key, raw in (params or {}).items():
        if key not in allowed:
            hint = f"; {name} takes: {', '.join(allowed)}" if allowed else f"; {name} takes none"
            raise ShapeError(f"{name}: unknown parameter {key!r}{hint}")
        kwargs[key] = _convert(name, key, allowed[key], raw)
    if issubclass(cls, RateShape):
        kwargs |= dataclasses.asdict(arrivals)
    return cls(users=users, duration_s=duration_s, spawn_rate=spawn_rate, **kwargs)


def parse_shape_params(items: list[str] | None) -> dict[str, str]:
    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ShapeError(f"--shape-param {item!r}: expected KEY=VALUE")
        params[key.strip()] = value.strip()
    return params
