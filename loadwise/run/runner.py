"""`loadwise run`: start Locust (one local process, or a master and N local workers),
show live progress, and leave a finished run directory whatever happens.

The Locust processes do the recording (see `loadwise.engine.plugin`); this module only starts,
watches and stops them, by PID, and repairs `run.json` if one of them died before it
could say how the run ended.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadwise.analysis import metrics
from loadwise.analysis import summary as summaries
from loadwise.analysis.redact import redact
from loadwise.analysis.rundir import (
    DB_STATEMENTS_JSON,
    LOCUST_LOG,
    RUN_JSON,
    STATUS_FAILED,
    STATUS_INTERRUPTED,
    STATUS_RUNNING,
    RunDir,
    RunDirError,
    epoch_of,
    iso_utc,
    make_run_id,
    new_run_path,
)
from loadwise.run.collector import PrometheusSettings, Scraper, collect_prometheus
from loadwise.config import check_host_allowed
from loadwise.run.net import free_port
from loadwise.run.runlog import RunLog
from loadwise.run.live import RUN_DIR_PREFIX, LiveDisplay, Status
from loadwise.scenarios import SCENARIOS
from loadwise.scenarios.rates import RATE_SHAPE_NAMES, ArrivalOptions
from loadwise.scenarios.shapes import AUTO_SHAPE, Shape, build_shape
from loadwise.settings import DEFAULT_INTERVAL_S, DEFAULT_MASTER_PORT
from loadwise.errors import LoadwiseError

ENTRY = Path(__file__).parent.parent / "engine" / "locustfile.py"
STOP_GRACE_S = 30.0  # after SIGTERM, how long Locust gets to write its last intervals
START_SLACK_S = 90.0  # beyond the planned duration: start-up, workers connecting, shutdown
REMOTE_WORKERS_WAIT_S = 300


class RunError(LoadwiseError):
    """The run could not start; the message says why (exit code 2)."""


@dataclass
class RunSpec:
    scenario: str
    host: str | None  # None: each User class's own `host`
    shape: str = "constant"
    users: int = 10
    spawn_rate: float | None = None
    duration_s: float = 60.0
    duration_given: bool = True  # False: a locustfile's own shape runs as long as it says
    shape_params: dict[str, str] = field(default_factory=dict)
    arrivals: ArrivalOptions = field(default_factory=ArrivalOptions)  # rate shapes: --rate, --max-users ...
    workers: int = 0
    runs_dir: Path = Path("runs")
    interval_s: float = DEFAULT_INTERVAL_S
    tags: dict[str, str] = field(default_factory=dict)
    target_commit: str | None = None
    allowed_hosts: list[str] = field(default_factory=list)
    scrape_urls: list[str] = field(default_factory=list)
    prometheus: PrometheusSettings | None = None
    exporter_port: int | None = None
    db_dsn: str | None = None  # snapshot pg_stat_statements at start and end (never stored)
    cache_endpoints: list[str] = field(default_factory=list)
    expect_workers: int = 0  # workers started elsewhere (`loadwise worker`, a Kubernetes Deployment)
    listen: str = "127.0.0.1"  # where the master port and the exporter bind
    master_port: int | None = None
    locust_args: list[str] = field(default_factory=list)  # Locust's own options, passed through as given
    web_ui: bool = False  # serve Locust's web UI: each test started there is its own run directory

    @property
    def distributed(self) -> bool:
        return self.workers > 0 or self.expect_workers > 0


@dataclass
class RunResult:
    run_dir: RunDir
    status: str
    reason: str | None
    summary: dict[str, Any]


def check_scenario(scenario: str) -> None:
    if scenario not in SCENARIOS and not (scenario.endswith(".py") and Path(scenario).is_file()):
        raise RunError(f"unknown scenario {scenario!r}: use one of {', '.join(SCENARIOS)} or the path of a locustfile (.py)")


def validate(spec: RunSpec) -> Shape:
    """Check everything that can be checked before starting; raises with a one-line message."""
    check_scenario(spec.scenario)
    if spec.host:
        check_host_allowed(spec.host, spec.allowed_hosts)
    if spec.workers < 0 or spec.expect_workers < 0:
        raise RunError("--workers and --expect-workers must be 0 or more")
    if spec.master_port is not None and not 0 < spec.master_port < 65536:
        raise RunError(f"--master-port {spec.master_port} is not a TCP port")
    if spec.interval_s <= 0:
        raise RunError("--interval must be positive")
    shape = "constant" if spec.shape == AUTO_SHAPE else spec.shape  # what runs if the locustfile has no shape
    return build_shape(shape, spec.users, spec.duration_s, spec.spawn_rate, spec.shape_params, spec.arrivals)


def _new_run_dir(spec: RunSpec) -> Path:
    try:
        return new_run_path(spec.runs_dir, spec.scenario)
    except RunDirError as exc:
        raise RunError(str(exc)) from None


def _common_args(scenario: str, interval_s: float, cache_endpoints: list[str]) -> list[str]:
    args = [sys.executable, "-m", "locust", "-f", str(ENTRY), "--scenario", scenario, "--interval", f"{interval_s:g}"]
    for name in cache_endpoints:
        args += ["--cache-endpoint", name]
    return args


# Locust options that only the master (or a local runner) acts on, and how many values each takes.
# A worker given them would write its own CSV history into the master's files, or its own HTML
# report: Locust drops them from the workers of `--processes` (locust/main.py) and so does loadwise.
MASTER_ONLY_OPTIONS = {"--csv": 1, "--csv-full-history": 0, "--html": 1, "--json": 0, "--json-file": 1, "-t": 1,
                       "--run-time": 1, "--print-stats": 0, "--autostart": 0, "--autoquit": 1}  # fmt: skip


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
    if role == "worker":
        return worker_args(spec.scenario, "127.0.0.1", master_port or DEFAULT_MASTER_PORT, spec.interval_s,
                           spec.cache_endpoints, spec.shape, spec.locust_args)  # fmt: skip
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
    if spec.allowed_hosts:
        args += ["--allowed-hosts", ",".join(spec.allowed_hosts)]
    if spec.exporter_port:
        args += ["--exporter-port", str(spec.exporter_port), "--exporter-host", spec.listen]
    if role == "master":
        # Remote workers may still be pulling their image: give them longer than local ones.
        wait_s = REMOTE_WORKERS_WAIT_S if spec.expect_workers else 60
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
    flags = {"rate": "--rate", "max_users": "--max-users", "arrivals": "--arrivals", "seed": "--arrival-seed",
             "max_lateness_s": "--max-lateness"}  # fmt: skip
    default, args = ArrivalOptions(), []
    for key, flag in flags.items():
        value = getattr(arrivals, key)
        if value != getattr(default, key):
            args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
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


class _Processes:
    """The Locust processes of one run, each in its own process group so a terminal's Ctrl-C
    reaches only `loadwise run`, which then stops them in order. A process group, not a new
    session: Linux schedules each session as its own group (autogroup), which gave every
    worker a share of the CPU equal to the whole target's on a shared machine (`--workers 2`
    ran at 0.88x of `locust --processes 2`, whose workers stay in the caller's session)."""

    def __init__(self, log_path: Path):
        self.log = RunLog(log_path)
        self.relays: list[threading.Thread] = []
        self.main: subprocess.Popen[str] | None = None
        self.workers: list[subprocess.Popen[str]] = []
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def start_main(self, args: list[str]) -> subprocess.Popen[str]:
        self.main = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            process_group=0, env=self.env,
        )  # fmt: skip
        return self.main

    def start_worker(self, args: list[str]) -> None:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                process_group=0, env=self.env)  # fmt: skip
        self.workers.append(proc)
        relay = threading.Thread(target=_relay, args=(proc.stdout, self.log, None), daemon=True)
        relay.start()
        self.relays.append(relay)

    def all(self) -> list[subprocess.Popen[str]]:
        return ([self.main] if self.main else []) + self.workers

    @staticmethod
    def signal(proc: subprocess.Popen[str], sig: int) -> None:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, grace_s: float) -> None:
        """Ctrl-C the main process (Locust stops its workers), then kill whatever is left."""
        if self.main:
            self.signal(self.main, signal.SIGINT)
        self.wait_all(grace_s)

    def wait_all(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for proc in self.all():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.signal(proc, signal.SIGTERM)
        for proc in self.all():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.signal(proc, signal.SIGKILL)
                proc.wait()

    def close(self) -> None:
        for relay in self.relays:
            relay.join(timeout=5)
        self.log.close()


def _relay(stream: Any, log: Any, display: LiveDisplay | None, run_dirs: list[Path] | None = None) -> None:
    for line in stream:
        if line.startswith(RUN_DIR_PREFIX):  # a web UI test's run directory started or finished
            what, _, path = line[len(RUN_DIR_PREFIX) :].rstrip("\n").partition(" ")
            if run_dirs is not None and what == "started":
                run_dirs.append(Path(path))
            continue
        status = Status.from_line(line.rstrip("\n"))
        if status is None:
            log.write(line)
        elif display is not None:
            display.show(status)


def _last_error(log_path: Path) -> str:
    try:
        lines = [ln.strip() for ln in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    for line in reversed(lines):
        if "error" in line.lower() or "Error" in line:
            return line
    return lines[-1] if lines else "no output"


def execute(spec: RunSpec, display: LiveDisplay | None = None) -> RunResult:
    """Run the load test described by `spec` (already validated) to the end."""
    path = _new_run_dir(spec)
    run_dir = RunDir(path)
    procs = _Processes(path / LOCUST_LOG)
    interrupted = threading.Event()
    stop_requested = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if interrupted.is_set():  # second Ctrl-C: stop waiting politely
            for proc in procs.all():
                procs.signal(proc, signal.SIGKILL)
            return
        interrupted.set()
        stop_requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    scraper = Scraper(spec.scrape_urls, spec.interval_s).start() if spec.scrape_urls else None
    db_start = _db_snapshot(spec.db_dsn)
    try:
        port = spec.master_port or (free_port() if spec.workers else DEFAULT_MASTER_PORT)
        main = procs.start_main(locust_args(spec, path, "master" if spec.distributed else "local", port))
        relay = threading.Thread(target=_relay, args=(main.stdout, procs.log, display), daemon=True)
        relay.start()
        for _ in range(spec.workers):
            procs.start_worker(locust_args(spec, path, "worker", port))
        slack = START_SLACK_S + (REMOTE_WORKERS_WAIT_S if spec.expect_workers else 0)
        # A locustfile's own shape decides its length: no deadline then (Ctrl-C still stops it).
        open_ended = spec.shape == AUTO_SHAPE and not spec.duration_given
        deadline = math.inf if open_ended else time.monotonic() + spec.duration_s + slack
        while main.poll() is None:
            if stop_requested.is_set() or time.monotonic() > deadline:
                stop_requested.clear()
                if not interrupted.is_set():
                    interrupted.set()  # overran its time: stop it like a Ctrl-C would
                procs.stop(STOP_GRACE_S)
            time.sleep(0.1)
        procs.wait_all(10.0)
        relay.join(timeout=5)
    finally:
        if scraper is not None:
            scraper.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        procs.close()
        if display is not None:
            display.close()
    try:
        result = _finish(run_dir, main.returncode, interrupted.is_set(), procs.log.write_problem)
        _collect(run_dir, spec, scraper)
        if spec.db_dsn:
            _store_db_window(run_dir, db_start, _db_snapshot(spec.db_dsn))
    except OSError as exc:
        return _unwritable(run_dir, exc)
    return result


def execute_web_ui(spec: RunSpec, display: LiveDisplay | None = None) -> list[RunResult]:
    """Serve Locust's web UI until Ctrl-C (or Locust quits): every test started from the UI is
    its own run directory, finished when it stops. Returns the runs, oldest first."""
    spec.runs_dir.mkdir(parents=True, exist_ok=True)
    procs = _Processes(spec.runs_dir / f"{make_run_id('web-ui')}.locust.log")
    run_dirs: list[Path] = []
    interrupted = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if interrupted.is_set():  # second Ctrl-C: stop waiting politely
            for proc in procs.all():
                procs.signal(proc, signal.SIGKILL)
        interrupted.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        port = spec.master_port or free_port()
        main = procs.start_main(locust_args(spec, spec.runs_dir, "master" if spec.distributed else "local", port))
        relay = threading.Thread(target=_relay, args=(main.stdout, procs.log, display, run_dirs), daemon=True)
        relay.start()
        for _ in range(spec.workers):
            procs.start_worker(locust_args(spec, spec.runs_dir, "worker", port))
        while main.poll() is None and not interrupted.is_set():
            time.sleep(0.1)
        procs.stop(STOP_GRACE_S)
        relay.join(timeout=5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        procs.close()
        if display is not None:
            display.close()
    results = []
    for path in run_dirs:
        run_dir = RunDir(path)
        try:
            results.append(_finish(run_dir, main.returncode, True, procs.log.write_problem))
            if spec.prometheus is not None:
                _collect(run_dir, spec, None)
        except (OSError, RunError) as exc:
            results.append(_unwritable(run_dir, exc) if isinstance(exc, OSError) else RunResult(run_dir, STATUS_FAILED, str(exc), {}))
    if not run_dirs and main.returncode not in (0, None) and not interrupted.is_set():
        raise RunError(f"Locust exited (code {main.returncode}): {_last_error(procs.log.path)}")
    return results


def _db_snapshot(dsn: str | None) -> Any:
    """pg_stat_statements at one moment, or the reason it could not be read."""
    if not dsn:
        return None
    from loadwise.analysis.indexes.postgres import DbAdvisorError, snapshot

    try:
        return snapshot(dsn)
    except DbAdvisorError as exc:
        return str(exc)


def _store_db_window(run_dir: RunDir, start: Any, end: Any) -> None:
    """The run's statements (pg_stat_statements difference) into db_statements.json."""
    from loadwise.analysis.indexes.postgres import window

    problem = start if isinstance(start, str) else end if isinstance(end, str) else None
    payload = {"problem": problem, "statements": [] if problem else window(start, end)}
    run_dir.write_json(DB_STATEMENTS_JSON, payload)


def _collect(run_dir: RunDir, spec: RunSpec, scraper: Scraper | None) -> None:
    """Write `metrics.csv` and record in `run.json` what the collector got and what it could not."""
    if scraper is None and spec.prometheus is None:
        return
    info = run_dir.read_info()
    rows, problems, sources = [], [], []
    if scraper is not None:
        got, missed = scraper.results()
        rows, problems, sources = rows + got, problems + missed, sources + ["scrape"]
    if spec.prometheus is not None and info.started_at and info.ended_at:
        print("collecting server metrics from Prometheus ...", file=sys.stderr, flush=True)
        got, missed = collect_prometheus(spec.prometheus, epoch_of(info.started_at), epoch_of(info.ended_at), spec.interval_s)
        rows, problems, sources = rows + got, problems + missed, sources + ["prometheus"]
    if rows:
        run_dir.write_metrics(metrics.to_frame(rows))
    info.collector = {
        "sources": sources,
        "scrape_urls": [redact(u) for u in spec.scrape_urls],
        "prometheus_url": redact(spec.prometheus.url) if spec.prometheus else None,
        "series": {src: sorted({r["series"] for r in rows if r["source"] == src}) for src in sources},
        "missing": problems,
    }
    run_dir.write_info(info)


def _finish(run_dir: RunDir, returncode: int | None, interrupted: bool, write_problem: str | None = None) -> RunResult:
    """Make `run.json` and `summary.json` true even when Locust died without writing them."""
    if not (run_dir.path / RUN_JSON).exists():
        raise RunError(f"Locust exited (code {returncode}) before the run started: {_last_error(run_dir.path / LOCUST_LOG)}")
    info = run_dir.read_info()
    if info.status == STATUS_RUNNING:
        info.status = STATUS_INTERRUPTED if interrupted and not write_problem else STATUS_FAILED
        info.status_reason = (f"the run directory could not be written: {write_problem}" if write_problem else
                              f"the load generator exited with code {returncode} before finishing the run")  # fmt: skip
        info.ended_at = iso_utc(time.time())
        run_dir.write_info(info)
        summary = summaries.write_summary(run_dir)
    else:
        try:
            summary = run_dir.read_summary()
        except Exception:
            summary = summaries.write_summary(run_dir)
    return RunResult(run_dir, info.status, info.status_reason, summary)


def _unwritable(run_dir: RunDir, exc: OSError) -> RunResult:
    """The run directory is full or read-only: mark the run failed in run.json if that can
    still be written (in place, within the space the file already holds, when a new copy
    does not fit), else say so on stderr; the summary of what was recorded is printed."""
    reason = f"the run directory could not be written: {exc.strerror or exc}"
    summary: dict[str, Any] = {}
    try:
        info = run_dir.read_info()
        info.status, info.status_reason = STATUS_FAILED, reason
        info.ended_at = info.ended_at or iso_utc(time.time())
        summary = summaries.summarize(info, run_dir.read_intervals())
        run_dir.write_info(info, in_place_if_full=True)
    except (OSError, RunDirError):
        print(f"loadwise run: {run_dir.file(RUN_JSON)} could not be updated either: the run failed ({reason})",
              file=sys.stderr)  # fmt: skip
    return RunResult(run_dir, STATUS_FAILED, reason, summary)
