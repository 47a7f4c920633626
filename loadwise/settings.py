"""Options declared once: a settings dataclass field carries its CLI flag and help.

An advisor's or a command's typed settings class is the one place an option's default
lives (as robusta-dev/krr's strategy settings are its CLI flags): `loadwise.cli.args`
turns each field marked with `option(...)` into an argparse option whose help ends
with the default, and builds the settings back from the parsed arguments.
This module imports nothing, so every part (analysis, capacity, autoscaling) may use it.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

# How a value is read from the command line: the CLI maps these names to parsers.
# "fraction" takes 5% or 0.05; "duration" 90s, 5m; "ms" 2ms, 1s; "positive" a finite number > 0.
PARSERS = ("int", "float", "str", "fraction", "duration", "ms", "positive", "count")


def option(default: Any, help: str, *, flag: str | None = None, parse: str = "float",
           metavar: str | None = None, choices: tuple[str, ...] | None = None,
           shown: str | None = None) -> Any:  # fmt: skip
    """A dataclass field that is also a CLI option (`--field-name` unless `flag` says otherwise).

    `shown` is how the default reads in --help when its plain form would mislead
    (0.001 as "0.1%"); by default it is derived from the parser.
    """
    if parse not in PARSERS:
        raise ValueError(f"unknown option parser {parse!r}")
    meta = {"help": help, "flag": flag, "parse": parse, "metavar": metavar, "choices": choices, "shown": shown}
    return field(default=default, metadata={"option": meta})


# Defaults that several parts share (the run's writer, the Locust plugin, the CLI).
DEFAULT_INTERVAL_S = 5.0  # the recorder's interval: one row per endpoint per interval
DEFAULT_MASTER_PORT = 5557  # Locust's own default
DEFAULT_USERS = 10  # closed-model users when neither --users nor the locustfile says
DEFAULT_LISTEN = "127.0.0.1"  # where a master's port and the live exporter bind: loopback unless asked
# The open model's load generator is called saturated when more than this share of arrivals were
# scheduled late by the generator itself (its event loop was busy), or when Locust warned about its
# CPU. A few percent come from pauses (garbage collection, the OS giving the CPU to the target on a
# shared machine: 1-3 % measured past the demo shop's knee); a generator that cannot keep up is far
# above. Run-wide in run.json; per step, the capacity plan names such steps in a warning.
GENERATOR_LATE_SHARE = 0.05
