"""loadwise: Locust load tests that end in answers (SLO verdicts, regressions, capacity)."""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `from loadwise import check` in a locustfile; imported on first use, so `loadwise --help`
    # does not load Locust's side.
    if name == "check":
        from loadwise.engine.checks import check

        return check
    if name == "Scenario":  # `scenarios = [Scenario.of(...)]` in a locustfile
        from loadwise.scenarios.plan import Scenario

        return Scenario
    raise AttributeError(f"module 'loadwise' has no attribute {name!r}")
