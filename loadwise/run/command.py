"""The command lines of a run's Locust processes: a local runner, a master, its workers.

Each one runs loadwise's own locustfile (ENTRY) with the options `loadwise run` was given,
spelled as Locust's parser takes them (loadwise.engine.options), and Locust's own options
passed through; a worker less those only a master acts on.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from loadwise.analysis.rundir import SCENARIOS_JSON
from loadwise.engine.options import ARRIVAL_OPTIONS
from loadwise.settings import DEFAULT_MASTER_PORT
from loadwise.shapes.catalog import AUTO_SHAPE
from loadwise.shapes.rates import RATE_SHAPE_NAMES, ArrivalOptions

if TYPE_CHECKING:
    from loadwise.run.runner import RunSpec

ENTRY = Path(__file__).parent.parent / "engine" / "locustfile.py"
REMOTE_WORKERS_WAIT_S = 300
LOCAL_WORKERS_WAIT_S = 60

# Locust options that only the master (or a local runner) acts on, and how many values each takes.
# A worker given them would write its own CSV history into the master's files, or its own HTML
# report: Locust drops them from the workers of `--processes` (locust/main.py) and so does loadwise.
MASTER_ONLY_OPTIONS = {"--csv": 1, "--csv-full-history": 0, "--html": 1, "--json": 0, "--json-file": 1, "-t": 1,
                       "--run-time": 1, "--print-stats": 0, "--autostart": 0, "--autoquit": 1}  # fmt: skip


def _common_args(scenario: str, interval_s: float, cache_endpoints: list[str]) -> list[str]:
    args = [sys.executable, "-m", "locust", "-f", str(ENTRY), "--scenario", scenario, "--interval", f"{interval_s:g}"]
    for name in cache_endpoints:
        args += ["--cache-endpoint", name]
    return args


def without_master_options(argv: list[str]) -> list[str]:
    """`argv` (Locust's options) less those only a master acts on."""
    kept, i = [], 0
    while i < len(argv):
        flag, has_value = argv[i].split("=", 1)[0], "=" in argv[i]
        if flag in MASTER_ONLY_OPTIONS:
            i += 1 + (0 if has_value else MASTER_ONLY_OPTIONS[flag])
            continue
        kept.append(argv[i])
        i += 1
    return kept


def locust_args(spec: RunSpec, run_dir: Path, role: str, master_port: int | None = None) -> list[str]:
    """Command line of one Locust process; `role` is local, master or worker."""
    plan = ["--scenarios", str(run_dir / SCENARIOS_JSON)] if spec.scenarios else []  # written there by the runner
    if role == "worker":
        return worker_args(spec.scenario, "127.0.0.1", master_port or DEFAULT_MASTER_PORT, spec.interval_s,
                           spec.cache_endpoints, spec.shape, spec.locust_args) + plan  # fmt: skip
    args = _common_args(spec.scenario, spec.interval_s, spec.cache_endpoints) + spec.locust_args
    args += [*(["--host", spec.host] if spec.host else []), "--status-stream", "-u", str(spec.users)]
    if spec.web_ui:  # the UI's form starts tests (with a named shape: that shape); the plugin makes their directories
        args += ["--runs-dir", str(spec.runs_dir), *([] if _option_value(spec.locust_args, "--web-host") else ["--web-host", "127.0.0.1"])]
        args += [] if spec.shape == AUTO_SHAPE else ["--shape", spec.shape]
    else:
        args += ["--headless", "--only-summary", "--run-dir", str(run_dir), "--shape", spec.shape]
    if spec.duration_given or spec.shape != AUTO_SHAPE:
        args += ["-t", f"{spec.duration_s:g}s"]
    if spec.spawn_rate is not None:
        args += ["-r", f"{spec.spawn_rate:g}"]
    for key, value in spec.shape_params.items():
        args += ["--shape-param", f"{key}={value}"]
    args += _arrival_args(spec.arrivals)
    for key, value in spec.tags.items():
        args += ["--run-tag", f"{key}={value}"]
    if spec.target_commit:
        args += ["--target-commit", spec.target_commit]
    for text in spec.abort_on:
        args += ["--abort-on", text]
    if spec.allowed_hosts:
        args += ["--allowed-hosts", ",".join(spec.allowed_hosts)]
    if spec.exporter_port:
        args += ["--exporter-port", str(spec.exporter_port), "--exporter-host", spec.listen]
    args += plan
    if role == "master":
        # Remote workers may still be pulling their image: give them longer than local ones.
        wait_s = REMOTE_WORKERS_WAIT_S if spec.expect_workers else LOCAL_WORKERS_WAIT_S
        args += ["--master", "--expect-workers", str(spec.workers + spec.expect_workers), "--expect-workers-max-wait", str(wait_s)]
        args += ["--master-bind-host", spec.listen, "--master-bind-port", str(master_port)]
    return args


def _option_value(argv: list[str], *names: str) -> str | None:
    """The value a Locust option was given in `argv` (`--web-port 8090` or `--web-port=8090`)."""
    for i, arg in enumerate(argv):
        for name in names:
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
    return None


def web_ui_url(spec: RunSpec) -> str:
    """Where Locust serves its web UI for this spec (Locust's defaults unless its options say otherwise)."""
    host = _option_value(spec.locust_args, "--web-host") or "127.0.0.1"
    port = _option_value(spec.locust_args, "--web-port", "-P") or "8089"
    return f"http://{host}:{port}"


def _arrival_args(arrivals: ArrivalOptions) -> list[str]:
    """The rate shapes' options, for the Locust command line (only those that differ from the defaults)."""
    default, args = ArrivalOptions(), []
    for key, option in ARRIVAL_OPTIONS.items():
        value = getattr(arrivals, key)
        if value != getattr(default, key):
            args += [option.flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return args


def worker_args(scenario: str, master_host: str, master_port: int, interval_s: float, cache_endpoints: list[str],
                shape: str | None = None, locust_args: list[str] | None = None) -> list[str]:  # fmt: skip
    """Command line of a Locust worker (a local one, or `loadwise worker` joining a master elsewhere).
    A rate shape is named so the worker's users wait for arrivals (the master sends the plan).
    Locust's own options (and a locustfile's) pass through, less those only a master acts on."""
    args = _common_args(scenario, interval_s, cache_endpoints)
    if shape in RATE_SHAPE_NAMES:
        args += ["--shape", shape]
    args += ["--worker", "--master-host", master_host, "--master-port", str(master_port)]
    return args + without_master_options(locust_args or [])
