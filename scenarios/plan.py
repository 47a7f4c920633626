"""Several scenarios in one run (k6's `scenarios`): each its own User classes, load model and start.

A scenario names a locustfile (a built-in scenario or a path; the run's own by default) and
some of its User classes (all of them by default), a shape (any closed shape or rate shape,
with its parameters), when it starts (seconds after the run starts) and tags (key = value,
recorded with its numbers). They are written as `[[scenario]]` tables in a TOML file given
with `--scenarios FILE`, as `[[profiles.NAME.scenario]]` in loadwise.toml, or in Python as a
locustfile's module-level `scenarios = [loadwise.Scenario.of(...)]`. Everything here is pure:
`loadwise.engine.mix` runs them on Locust.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadwise.durations import parse_duration
from loadwise.errors import LoadwiseError
from loadwise.shapes.base import Shape, ShapeError
from loadwise.shapes.catalog import SHAPES, build_shape
from loadwise.shapes.rates import ArrivalOptions, RateShape

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
# A scenario table's own keys; every other key is a parameter of its shape (steps, start_users ...).
SCENARIO_KEYS = ("name", "locustfile", "classes", "shape", "users", "duration", "start", "spawn_rate", "tags",
                 "rate", "max_users", "arrivals", "seed", "max_lateness")  # fmt: skip


class ScenarioPlanError(LoadwiseError, ValueError):
    """A malformed scenario; the one-line message names the scenario and the key."""


@dataclass(frozen=True)
class Scenario:
    """One scenario of a run: what runs (`locustfile`, `classes`), how much (`shape`), from when (`start_s`)."""

    name: str
    shape: Shape
    locustfile: str | None = None  # None: the run's --scenario
    classes: tuple[str, ...] = ()  # User class names; empty: every User class of the locustfile
    start_s: float = 0.0
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def open_model(self) -> bool:
        return isinstance(self.shape, RateShape)

    @property
    def end_s(self) -> float:
        return self.start_s + self.shape.duration_s

    def users_at(self, t: float) -> int:
        """Active users (closed shapes) `t` seconds into the run: none before its start or after its end."""
        if t < self.start_s or t >= self.end_s or self.open_model:
            return 0
        return self.shape.users_at(t - self.start_s)

    def to_dict(self) -> dict[str, Any]:
        """run.json's record of it (and what a worker is sent): enough to build it again."""
        return {"name": self.name, "locustfile": self.locustfile, "classes": list(self.classes),
                "shape": self.shape.name, "params": self.shape.params(), "start_s": self.start_s, "tags": dict(self.tags)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        shape = SHAPES[data["shape"]](**data["params"])
        return cls(data["name"], shape, data.get("locustfile"), tuple(data.get("classes", ())), float(data["start_s"]),
                   dict(data.get("tags", {})))  # fmt: skip

    @classmethod
    def of(cls, name: str, shape: str = "constant", *, classes: list[Any] | None = None, **table: Any) -> Scenario:
        """A scenario from Python, with the keys of a `[[scenario]]` table (classes may be the classes themselves):
        `Scenario.of("checkout", "constant-rate", classes=[Buyer], rate=5, duration="20s", start="5s")`."""
        names = [c if isinstance(c, str) else c.__name__ for c in classes or []]
        return from_table({"name": name, "shape": shape, **({"classes": names} if names else {}), **table}, "scenarios")


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise ScenarioPlanError(f"{where}: expected a duration (e.g. 30s, 2m), got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ScenarioPlanError(f"{where}: expected a duration (e.g. 30s, 2m), got {value!r}")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ScenarioPlanError(f"{where}: {exc}") from None


def _typed(value: Any, kind: type, where: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ScenarioPlanError(f"{where}: expected {'a number' if kind is float else 'an integer' if kind is int else 'a string'}, got {value!r}")
    return value


def from_table(table: dict[str, Any], where: str) -> Scenario:
    """One `[[scenario]]` table as a Scenario; ScenarioPlanError names the key that is wrong."""
    if not isinstance(table, dict):
        raise ScenarioPlanError(f"{where}: a scenario is a table (name = ..., shape = ...), got {table!r}")
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ScenarioPlanError(f"{where}: each scenario needs a name (letters, digits, - and _, starting with a letter), "
                                f"got {name!r}")  # fmt: skip
    where = f"{where}: scenario {name!r}"
    shape_name = table.get("shape")
    if not isinstance(shape_name, str):
        raise ScenarioPlanError(f"{where}: `shape` is missing (one of: {', '.join(SHAPES)})")
    if "duration" not in table:
        raise ScenarioPlanError(f"{where}: `duration` is missing (e.g. duration = \"30s\")")
    classes = table.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
        raise ScenarioPlanError(f"{where}: `classes` is a list of User class names, got {classes!r}")
    tags = table.get("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(v, str | int | float) for v in tags.values()):
        raise ScenarioPlanError(f"{where}: `tags` is a table of key = \"value\", got {tags!r}")
    locustfile = table.get("locustfile")
    if locustfile is not None and not isinstance(locustfile, str):
        raise ScenarioPlanError(f"{where}: `locustfile` is a built-in scenario name or a path, got {locustfile!r}")
    params = {k: str(v) for k, v in table.items() if k not in SCENARIO_KEYS}
    try:
        arrivals = ArrivalOptions(
            rate=_typed(table["rate"], float, f"{where}: rate") if "rate" in table else None,
            max_users=_typed(table["max_users"], int, f"{where}: max_users") if "max_users" in table else None,
            arrivals=_typed(table.get("arrivals", ArrivalOptions.arrivals), str, f"{where}: arrivals"),
            seed=_typed(table["seed"], int, f"{where}: seed") if "seed" in table else None,
            max_lateness_s=_seconds(table.get("max_lateness", ArrivalOptions.max_lateness_s), f"{where}: max_lateness"),
        )
        spawn_rate = _typed(table["spawn_rate"], float, f"{where}: spawn_rate") if "spawn_rate" in table else None
        shape = build_shape(shape_name, _typed(table.get("users", 1), int, f"{where}: users"),
                            _seconds(table["duration"], f"{where}: duration"), spawn_rate, params, arrivals)  # fmt: skip
    except ShapeError as exc:
        raise ScenarioPlanError(f"{where}: {exc}") from None
    start_s = _seconds(table.get("start", 0), f"{where}: start")
    if start_s < 0:
        raise ScenarioPlanError(f"{where}: start must not be negative")
    return Scenario(name, shape, locustfile, tuple(classes), start_s, {str(k): str(v) for k, v in tags.items()})


def from_tables(tables: Any, where: str) -> list[Scenario]:
    """A list of scenario tables; their names must differ."""
    if not isinstance(tables, list) or not tables:
        raise ScenarioPlanError(f"{where}: expected a list of [[scenario]] tables")
    scenarios = [from_table(t, f"{where}[{i}]") for i, t in enumerate(tables)]
    names = [s.name for s in scenarios]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ScenarioPlanError(f"{where}: scenario name {', '.join(map(repr, twice))} is used twice")
    return scenarios


def read_scenarios(path: Path) -> list[Scenario]:
    """The `[[scenario]]` tables of a TOML file (or the JSON `loadwise run` writes for a profile's)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioPlanError(f"--scenarios {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ScenarioPlanError(f"--scenarios {path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") from None
    if not isinstance(data, dict) or "scenario" not in data:
        raise ScenarioPlanError(f"--scenarios {path}: no [[scenario]] tables")
    if path.suffix == ".json":  # the plan as `loadwise run` wrote it (Scenario.to_dict), already checked
        try:
            return [Scenario.from_dict(d) for d in data["scenario"]]
        except (KeyError, TypeError, ShapeError) as exc:
            raise ScenarioPlanError(f"--scenarios {path}: not a scenario plan ({exc})") from None
    return from_tables(data["scenario"], str(path))


def write_plan(scenarios: list[Scenario], path: Path) -> None:
    """The scenarios as JSON that read_scenarios reads back (what `loadwise run` hands each Locust process)."""
    path.write_text(json.dumps({"scenario": [s.to_dict() for s in scenarios]}, indent=2) + "\n", encoding="utf-8")


def duration_s(scenarios: list[Scenario]) -> float:
    """The run's planned duration: until the last scenario ends."""
    return max(s.end_s for s in scenarios)


def seats(n: int, weights: dict[str, float]) -> dict[str, int]:
    """`n` users shared among classes by weight, one at a time to the class furthest below its share
    (Sainte-Lague): the counts at n+1 are never below those at n, so a scenario's classes keep
    their mix while its users ramp, and no class ever needs more users than its share of the peak."""
    counts = dict.fromkeys(weights, 0)
    live = {k: w for k, w in weights.items() if w > 0}
    for _ in range(n if live else 0):
        best = max(live, key=lambda k: (live[k] / (2 * counts[k] + 1), k))
        counts[best] += 1
    return counts


def split(n: int, capacity: dict[str, int]) -> dict[str, int]:
    """`n` active users among processes holding `capacity` users each, proportionally (largest
    remainder), never more than a process holds; the shares add up to min(n, total)."""
    total = sum(capacity.values())
    n = min(n, total)
    if total == 0:
        return dict.fromkeys(capacity, 0)
    exact = {k: n * c / total for k, c in capacity.items()}
    shares = {k: int(v) for k, v in exact.items()}
    for k in sorted(capacity, key=lambda k: (shares[k] - exact[k], k))[: n - sum(shares.values())]:
        shares[k] += 1
    return shares

