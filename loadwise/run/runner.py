"""`loadwise run`: start Locust (one local process, or a master and N local workers),
show live progress, and leave a finished run directory whatever happens.

The Locust processes do the recording (see `loadwise.engine.plugin`); this module says what
a run is (RunSpec) and runs one: `command` spells the Locust command lines, `processes`
starts, watches and stops them (by PID), `finish` repairs `run.json` if one of them died
before it could say how the run ended.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadwise.analysis import metrics
from loadwise.analysis.redact import redact
from loadwise.analysis.rundir import (
    SCENARIOS_JSON,
    DB_STATEMENTS_JSON,
    LOCUST_LOG,
    STATUS_FAILED,
    RunDir,
    RunDirError,
    epoch_of,
    make_run_id,
    new_run_path,
)
from loadwise.config import check_host_allowed
from loadwise.engine.options import RUNS_DIR
from loadwise.run.collector import PrometheusSettings, Scraper, collect_prometheus
from loadwise.run.command import REMOTE_WORKERS_WAIT_S, locust_args
from loadwise.run.finish import RunError, RunResult, finish, unwritable
from loadwise.run.live import LiveDisplay
from loadwise.run.net import free_port
from loadwise.run.processes import STOP_GRACE_S, Interrupts, Processes, last_error
from loadwise.scenarios import SCENARIOS
from loadwise.scenarios.plan import Scenario, write_plan
from loadwise.settings import DEFAULT_INTERVAL_S, DEFAULT_LISTEN, DEFAULT_MASTER_PORT, DEFAULT_USERS
from loadwise.shapes.base import Shape
from loadwise.shapes.catalog import AUTO_SHAPE, DEFAULT_DURATION_S, build_shape
from loadwise.shapes.rates import ArrivalOptions

START_SLACK_S = 90.0  # beyond the planned duration: start-up, workers connecting, shutdown


@dataclass
class RunSpec:
    scenario: str
    host: str | None  # None: each User class's own `host`
    shape: str = "constant"
    users: int = DEFAULT_USERS
    spawn_rate: float | None = None
    duration_s: float = DEFAULT_DURATION_S
    duration_given: bool = True  # False: a locustfile's own shape runs as long as it says
    shape_params: dict[str, str] = field(default_factory=dict)
    arrivals: ArrivalOptions = field(default_factory=ArrivalOptions)  # rate shapes: --rate, --max-users ...
    workers: int = 0
    runs_dir: Path = Path(RUNS_DIR.default)
    interval_s: float = DEFAULT_INTERVAL_S
    tags: dict[str, str] = field(default_factory=dict)
    target_commit: str | None = None
    allowed_hosts: list[str] = field(default_factory=list)
    scrape_urls: list[str] = field(default_factory=list)
    prometheus: PrometheusSettings | None = None
    exporter_port: int | None = None
    db_dsn: str | None = None  # snapshot pg_stat_statements at start and end (never stored)
    cache_endpoints: list[str] = field(default_factory=list)
    abort_on: list[str] = field(default_factory=list)  # thresholds that stop a failing run (judged by the master)
    expect_workers: int = 0  # workers started elsewhere (`loadwise worker`, a Kubernetes Deployment)
    listen: str = DEFAULT_LISTEN  # where the master port and the exporter bind
    master_port: int | None = None
    locust_args: list[str] = field(default_factory=list)  # Locust's own options, passed through as given
    web_ui: bool = False  # serve Locust's web UI: each test started there is its own run directory
    scenarios: list[Scenario] = field(default_factory=list)  # several at once (--scenarios, a profile's [[scenario]])

    @property
    def distributed(self) -> bool:
        return self.workers > 0 or self.expect_workers > 0


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
    from loadwise.analysis.thresholds import ThresholdError, parse_abort

    for text in spec.abort_on:
        try:
            parse_abort(text)
        except ThresholdError as exc:
            raise RunError(f"--abort-on: {exc}") from None
    if spec.scenarios and spec.shape != AUTO_SHAPE:
        raise RunError(f"--shape {spec.shape} and scenarios: each scenario has its own shape")
    if spec.scenarios and spec.web_ui:
        raise RunError("scenarios run headless: drop --web-ui")
    shape = "constant" if spec.shape == AUTO_SHAPE else spec.shape  # what runs if the locustfile has no shape
    return build_shape(shape, spec.users, spec.duration_s, spec.spawn_rate, spec.shape_params, spec.arrivals)


def _new_run_dir(spec: RunSpec) -> Path:
    try:
        return new_run_path(spec.runs_dir, spec.scenario)
    except RunDirError as exc:
        raise RunError(str(exc)) from None


def execute(spec: RunSpec, display: LiveDisplay | None = None) -> RunResult:
    """Run the load test described by `spec` (already validated) to the end."""
    path = _new_run_dir(spec)
    run_dir = RunDir(path)
    procs = Processes(path / LOCUST_LOG)
    interrupts = Interrupts(procs)
    scraper = Scraper(spec.scrape_urls, spec.interval_s).start() if spec.scrape_urls else None
    db_start = _db_snapshot(spec.db_dsn)
    if spec.scenarios:  # each Locust process reads the plan from the run directory (and it stays there, with the run)
        path.mkdir(parents=True, exist_ok=True)
        write_plan(spec.scenarios, run_dir.file(SCENARIOS_JSON))
    try:
        port = spec.master_port or (free_port() if spec.workers else DEFAULT_MASTER_PORT)
        main = procs.start_main(locust_args(spec, path, "master" if spec.distributed else "local", port), display)
        for _ in range(spec.workers):
            procs.start_worker(locust_args(spec, path, "worker", port))
        slack = START_SLACK_S + (REMOTE_WORKERS_WAIT_S if spec.expect_workers else 0)
        # A locustfile's own shape decides its length: no deadline then (Ctrl-C still stops it).
        open_ended = spec.shape == AUTO_SHAPE and not spec.duration_given
        procs.supervise(interrupts, math.inf if open_ended else time.monotonic() + spec.duration_s + slack)
    finally:
        if scraper is not None:
            scraper.stop()
        interrupts.restore()
        procs.close()
        if display is not None:
            display.close()
    try:
        result = finish(run_dir, main.returncode, interrupts.interrupted.is_set(), procs.log.write_problem)
        _collect(run_dir, spec, scraper)
        if spec.db_dsn:
            _store_db_window(run_dir, db_start, _db_snapshot(spec.db_dsn))
    except OSError as exc:
        return unwritable(run_dir, exc)
    return result


def execute_web_ui(spec: RunSpec, display: LiveDisplay | None = None) -> list[RunResult]:
    """Serve Locust's web UI until Ctrl-C (or Locust quits): every test started from the UI is
    its own run directory, finished when it stops. Returns the runs, oldest first."""
    spec.runs_dir.mkdir(parents=True, exist_ok=True)
    procs = Processes(spec.runs_dir / f"{make_run_id('web-ui')}.locust.log")
    run_dirs: list[Path] = []
    interrupts = Interrupts(procs)
    try:
        port = spec.master_port or free_port()
        main = procs.start_main(locust_args(spec, spec.runs_dir, "master" if spec.distributed else "local", port), display, run_dirs)
        for _ in range(spec.workers):
            procs.start_worker(locust_args(spec, spec.runs_dir, "worker", port))
        while main.poll() is None and not interrupts.interrupted.is_set():
            time.sleep(0.1)
        procs.stop(STOP_GRACE_S)
        procs.join_main_relay()
    finally:
        interrupts.restore()
        procs.close()
        if display is not None:
            display.close()
    results = []
    for path in run_dirs:
        run_dir = RunDir(path)
        try:
            results.append(finish(run_dir, main.returncode, True, procs.log.write_problem))
            if spec.prometheus is not None:
                _collect(run_dir, spec, None)
        except (OSError, RunError) as exc:
            results.append(unwritable(run_dir, exc) if isinstance(exc, OSError) else RunResult(run_dir, STATUS_FAILED, str(exc), {}))
    if not run_dirs and main.returncode not in (0, None) and not interrupts.interrupted.is_set():
        raise RunError(f"Locust exited (code {main.returncode}): {last_error(procs.log.path)}")
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
