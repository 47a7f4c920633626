"""The command-line options loadwise adds to Locust, and the ones `loadwise run` shares with it.

`loadwise run` parses its own command line, then starts Locust with another one. An option
both parsers take (the recorder's interval, the shape, the rate shapes' options, the runs
folder ...) is declared once here, as an `Option`, and each parser is built from it, so its
default, its help and the way its value is read (loadwise.readers) cannot drift apart: a
bad value given to plain `locust -f locustfile.py` is the same one-line error as to
`loadwise run`. No Locust here: `loadwise --help` imports this module.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from loadwise.shapes.catalog import AUTO_SHAPE, SHAPES
from loadwise.shapes.rates import ARRIVAL_LAWS, ArrivalOptions
from loadwise.readers import PARSE
from loadwise.settings import DEFAULT_INTERVAL_S, DEFAULT_LISTEN

@dataclass(frozen=True)
class Option:
    """One command-line option as both parsers declare it."""

    flag: str
    help: str
    default: Any = None
    kind: str = "str"  # how a value is read: a key of loadwise.readers.PARSE
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    repeat: bool = False  # may be given several times: the value is the list of them
    shown: str | None = None  # how the default reads in --help, when its plain form would mislead

    @property
    def dest(self) -> str:
        """The attribute the parsed value lands in (Locust's parsed_options.max_lateness ...)."""
        return self.flag.lstrip("-").replace("-", "_")

    def add(self, parser: Any, *flags: str, **changes: Any) -> None:
        """Declare the option on `parser` (a parser or an argument group). `flags` renames it
        (`loadwise run --out` is Locust's --runs-dir); `changes` are argparse keywords in which
        this parser differs (the demo's default rate, the CLI's choices of shape)."""
        default = changes.pop("default", self.default)
        # A changed default says itself; `shown` describes the spec's default only.
        shown = self.shown if default == self.default else None
        if shown is None and default is not None:
            shown = f"{default:g}" if isinstance(default, float) else str(default)
        text = changes.pop("help", self.help) + (f" (default {shown})" if shown else "")
        kwargs = {"action": "append", "default": []} if self.repeat else {"default": default}
        kwargs |= {"type": PARSE[self.kind], "metavar": self.metavar, "choices": self.choices, **changes}
        parser.add_argument(*(flags or (self.flag,)), help=text, **kwargs)


INTERVAL = Option("--interval", "recorder interval in seconds", DEFAULT_INTERVAL_S, "positive")
RUNS_DIR = Option("--runs-dir", "where run directories go", "runs", shown="runs/")
TAG = Option("--run-tag", "tag stored in run.json; repeatable", metavar="KEY=VALUE", repeat=True)
TARGET_COMMIT = Option("--target-commit", "git commit of the system under test, stored in run.json")
EXPORTER_PORT = Option("--exporter-port", "serve the run's own metrics for Prometheus on PORT", 0, "int", "PORT", shown="off")
CACHE_ENDPOINT = Option("--cache-endpoint", "sample request keys of this endpoint (e.g. '/products/[id]') for "
                        "`loadwise advise cache`; repeatable", metavar="NAME", repeat=True)  # fmt: skip
SHAPE = Option("--shape", f"load shape: {', '.join(SHAPES)} (uses -u, -r, -t), or {AUTO_SHAPE} (the locustfile's own "
               "LoadTestShape if it has one, else constant)")  # fmt: skip
ABORT_ON = Option("--abort-on", "stop the run when this threshold fails, judged live over a sliding window, e.g. "
                  "'p95<500ms over 30s after 1m' (window: the whole run unless `over`; judged from `after`, default 0); "
                  "the run ends completed, its status_reason naming the threshold and the moment, exit code 1; repeatable",
                  metavar="THRESHOLD", repeat=True)  # fmt: skip
SCENARIOS = Option("--scenarios", "run several scenarios at once, each with its own User classes, shape and start: "
                   "the [[scenario]] tables of this TOML file (see docs/scenarios.md)", metavar="FILE")  # fmt: skip
SHAPE_PARAM = Option("--shape-param", "shape parameter, e.g. steps=6; repeatable", metavar="KEY=VALUE", repeat=True)

# The rate shapes' options, by the ArrivalOptions field each one sets (whose default it takes).
ARRIVAL_OPTIONS: dict[str, Option] = {
    "rate": Option("--rate", "iterations per second (the peak for ramping-rate and step-rate); --users is then the "
                   "pre-spawned pool", ArrivalOptions.rate, "positive", "R"),
    "max_users": Option("--max-users", "the user pool's maximum", ArrivalOptions.max_users, "count", "N",
                        shown="10 x --users"),
    "arrivals": Option("--arrivals", "arrival times: evenly spaced or a Poisson process", ArrivalOptions.arrivals,
                       choices=ARRIVAL_LAWS),
    "seed": Option("--arrival-seed", "seed of the Poisson arrivals (default: random, recorded in run.json)",
                   ArrivalOptions.seed, "int", "N"),
    "max_lateness_s": Option("--max-lateness", "seconds an arrival may wait for a free user before it is dropped",
                             ArrivalOptions.max_lateness_s, "duration", "DURATION"),
}  # fmt: skip

def add_arguments(parser: Any) -> None:
    """loadwise's options on Locust's command line (Locust's init_command_line_parser event)."""
    group = parser.add_argument_group("loadwise", "loadwise recorder and run directory")
    group.add_argument("--scenario", default="browse", help="built-in scenario (browse, checkout, smoke) or a locustfile path")
    SHAPE.add(group)
    SHAPE_PARAM.add(group)
    SCENARIOS.add(group)
    group.add_argument("--run-dir", default=None, help="write the run directory here (default: RUNS_DIR/<run_id>)")
    RUNS_DIR.add(group)
    INTERVAL.add(group)
    TAG.add(group)
    TARGET_COMMIT.add(group)
    group.add_argument("--allowed-hosts", default="", help="comma-separated hosts allowed besides loopback")
    EXPORTER_PORT.add(group)
    group.add_argument("--exporter-host", default=DEFAULT_LISTEN, help=f"address the exporter listens on (default {DEFAULT_LISTEN})")
    CACHE_ENDPOINT.add(group)
    ABORT_ON.add(group)
    group.add_argument("--status-stream", action="store_true", default=False, help=argparse.SUPPRESS)
    rates = parser.add_argument_group("loadwise rate shapes", "the open model: iterations arrive at a planned rate")
    for option in ARRIVAL_OPTIONS.values():
        option.add(rates)


def arrival_options(opts: Any) -> ArrivalOptions:
    """The rate shapes' options as parsed (by Locust's parser or loadwise run's)."""
    return ArrivalOptions(**{field: getattr(opts, option.dest) for field, option in ARRIVAL_OPTIONS.items()})


def run_tags(items: list[str]) -> dict[str, str]:
    """--run-tag KEY=VALUE ... as run.json's tags."""
    tags = {}
    for item in items:
        key, _, value = item.partition("=")
        tags[key.strip()] = value.strip()
    return tags
