"""What `locust -f locustfile.py` loads: the scenario's User classes, the shape, the recorder.

Locust finds User and LoadTestShape classes among a locustfile's globals before it
parses the command line, so `--scenario` and `--shape` are read here first, from
sys.argv (or LOCUST_SCENARIO / LOCUST_SHAPE), to decide which classes to expose.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from locust.util.load_locustfile import is_shape_class, is_user_class

from loadwise.engine import plugin
from loadwise.scenarios import SCENARIOS
from loadwise.scenarios.plan import Scenario, ScenarioPlanError, read_scenarios
from loadwise.shapes.catalog import AUTO_SHAPE
from loadwise.shapes.rates import RATE_SHAPE_NAMES
from loadwise.errors import LoadwiseError


class ScenarioError(LoadwiseError, ValueError):
    pass


def load_module(scenario: str) -> Any:
    """The module of a built-in scenario name or of a locustfile path (a path is run once per process)."""
    if scenario in SCENARIOS:
        return importlib.import_module(SCENARIOS[scenario])
    path = Path(scenario)
    if path.suffix != ".py" or not path.is_file():
        raise ScenarioError(f"unknown scenario {scenario!r}: use one of {', '.join(SCENARIOS)} or the path of a locustfile (.py)")
    name = f"loadwise_user_{path.stem}"
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path.resolve()):
        return loaded
    spec = importlib.util.spec_from_file_location(name, path.resolve())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.resolve().parent))
    spec.loader.exec_module(module)
    return module


def load_scenario(scenario: str) -> dict[str, Any]:
    """User and shape classes of a built-in scenario name or of a locustfile path."""
    module = load_module(scenario)
    classes = {k: v for k, v in vars(module).items() if is_user_class(v) or is_shape_class(v)}
    if not any(is_user_class(v) for v in classes.values()):
        raise ScenarioError(f"scenario {scenario!r} defines no Locust User class")
    return classes


def scenario_classes(scenarios: list[Scenario], default_locustfile: str) -> dict[str, Any]:
    """The User classes of a run of several scenarios, one set per scenario, and the shape that runs them."""
    from loadwise.engine.mix import ScenariosShape, scenario_class

    classes: dict[str, Any] = {}
    for scenario in scenarios:
        locustfile = scenario.locustfile or default_locustfile
        by_name = {v.__name__: v for v in load_scenario(locustfile).values() if is_user_class(v)}  # each file runs once
        unknown = [c for c in scenario.classes if c not in by_name]
        if unknown:
            raise ScenarioError(f"scenario {scenario.name!r}: {locustfile} has no User class {', '.join(unknown)} "
                                f"(it has: {', '.join(sorted(by_name))})")  # fmt: skip
        for user_class in [by_name[c] for c in scenario.classes] or sorted(by_name.values(), key=lambda c: c.__name__):
            made = scenario_class(scenario, user_class)
            classes[made.__name__] = made
    classes["LoadwiseScenarios"] = type("LoadwiseScenarios", (ScenariosShape,), {"scenarios": tuple(scenarios)})
    return classes


def planned_scenarios(path: str | None, locustfile: str) -> list[Scenario] | None:
    """The run's scenarios: from --scenarios FILE, else a locustfile's own `scenarios` list; None for a run of one."""
    if path:
        return read_scenarios(Path(path))
    if locustfile in SCENARIOS or not Path(locustfile).is_file():
        return None
    own = getattr(load_module(locustfile), "scenarios", None)
    # A module-level `scenarios` holding no loadwise.Scenario is the locustfile's own business.
    if not isinstance(own, list | tuple) or not any(isinstance(s, Scenario) for s in own):
        return None
    if not all(isinstance(s, Scenario) for s in own):
        raise ScenarioError(f"{locustfile}: `scenarios` mixes loadwise.Scenario with other values")
    return list(own)


def selected_classes(argv: list[str]) -> dict[str, Any]:
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--scenario", default=os.environ.get("LOCUST_SCENARIO", "browse"))
    pre.add_argument("--shape", default=os.environ.get("LOCUST_SHAPE"))
    pre.add_argument("--scenarios", default=os.environ.get("LOCUST_SCENARIOS"))
    known, _ = pre.parse_known_args(argv)
    try:
        scenarios = planned_scenarios(known.scenarios, known.scenario)
    except ScenarioPlanError as exc:
        raise ScenarioError(str(exc)) from None
    if scenarios:
        if known.shape and known.shape != AUTO_SHAPE:
            raise ScenarioError(f"--shape {known.shape} and scenarios: each scenario has its own shape")
        return scenario_classes(scenarios, known.scenario)
    classes = load_scenario(known.scenario)
    own_shape = any(is_shape_class(v) for v in classes.values())
    # --shape auto keeps the locustfile's own LoadTestShape; a named shape replaces it.
    if known.shape and not (known.shape == AUTO_SHAPE and own_shape):
        from loadwise.engine.shape import LoadwiseShape

        classes = {k: v for k, v in classes.items() if not is_shape_class(v)}
        classes["LoadwiseShape"] = LoadwiseShape
    if known.shape in RATE_SHAPE_NAMES:  # open model: every task waits for its arrival, not for wait_time
        from loadwise.engine.arrivals import as_open_model

        classes = {k: as_open_model(v) if is_user_class(v) else v for k, v in classes.items()}
    return classes


def attach(namespace: dict[str, Any]) -> None:
    """Register the recorder and put the selected classes into a locustfile's globals."""
    plugin.register()
    try:
        namespace.update(selected_classes(sys.argv[1:]))
    except ScenarioError as exc:
        sys.stderr.write(f"loadwise: error: {exc}\n")
        sys.exit(2)
