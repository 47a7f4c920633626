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
from loadwise.shapes.catalog import AUTO_SHAPE
from loadwise.shapes.rates import RATE_SHAPE_NAMES
from loadwise.errors import LoadwiseError


class ScenarioError(LoadwiseError, ValueError):
    pass


def load_scenario(scenario: str) -> dict[str, Any]:
    """User and shape classes of a built-in scenario name or of a locustfile path."""
    if scenario in SCENARIOS:
        module = importlib.import_module(SCENARIOS[scenario])
    else:
        path = Path(scenario)
        if path.suffix != ".py" or not path.is_file():
            raise ScenarioError(
                f"unknown scenario {scenario!r}: use one of {', '.join(SCENARIOS)} or the path of a locustfile (.py)"
            )
        name = f"loadwise_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path.resolve())
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.resolve().parent))
        spec.loader.exec_module(module)
    classes = {k: v for k, v in vars(module).items() if is_user_class(v) or is_shape_class(v)}
    if not any(is_user_class(v) for v in classes.values()):
        raise ScenarioError(f"scenario {scenario!r} defines no Locust User class")
    return classes


def selected_classes(argv: list[str]) -> dict[str, Any]:
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--scenario", default=os.environ.get("LOCUST_SCENARIO", "browse"))
    pre.add_argument("--shape", default=os.environ.get("LOCUST_SHAPE"))
    known, _ = pre.parse_known_args(argv)
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
