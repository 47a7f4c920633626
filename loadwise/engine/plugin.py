"""The Locust side of loadwise: its command-line options, the recorder and the run directory.

Imported by `locustfile.py` (and so by every Locust process: local, master and
workers). On a local or master process it creates the run directory, appends closed
intervals as they close and finalizes `run.json` and `summary.json` when Locust quits,
whether the run completed, was interrupted (Ctrl-C, SIGTERM) or failed. On a worker it
ships its histograms to the master with each `report_to_master`.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.lock
import locust
from locust import events
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

import loadwise
from loadwise.analysis.redact import redact
from loadwise.analysis.rundir import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_INTERRUPTED,
    RunDir,
    RunInfo,
    iso_utc,
    new_run_path,
)
from loadwise.config import ConfigError, check_host_allowed
from loadwise.engine import provenance
from loadwise.engine.open_model import ARRIVALS_MESSAGE, OpenModel, arrival_options, seeded, shape_of_plan
from loadwise.engine.open_model import add_arguments as add_rate_arguments
from loadwise.engine.recorder import KeySample, Recorder
from loadwise.run.live import OTHER_NAME, RUN_DIR_PREFIX, Status
from loadwise.engine.shape import LoadwiseShape
from loadwise.scenarios.rates import RateShape
from loadwise.scenarios.shapes import AUTO_SHAPE, DEFAULT_DURATION_S, Shape, ShapeError, build_shape, parse_shape_params
from loadwise.settings import DEFAULT_INTERVAL_S

log = logging.getLogger("loadwise")

FLUSH_EVERY_S = 1.0
# Workers report every 3 s (locust.runners.WORKER_REPORT_INTERVAL); the master keeps an
# interval open long enough for every worker's share of it to arrive.
MASTER_GRACE_S = 7.0
LOCAL_GRACE_S = 0.5
FINAL_REPORT_WAIT_S = 5.0


def add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("loadwise", "loadwise recorder and run directory")
    group.add_argument("--scenario", default="browse", help="built-in scenario (browse, checkout, smoke) or a locustfile path")
    group.add_argument("--shape", default=None, help="load shape: constant, ramp, step, spike, soak, diurnal (uses -u, -r, -t), or auto (the locustfile's own LoadTestShape if it has one, else constant)")
    group.add_argument("--shape-param", action="append", default=[], metavar="KEY=VALUE", help="shape parameter; repeatable")
    add_rate_arguments(group)
    group.add_argument("--run-dir", default=None, help="write the run directory here (default: RUNS_DIR/<run_id>)")
    group.add_argument("--runs-dir", default="runs", help="parent of run directories (default: runs)")
    group.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S, help=f"recorder interval in seconds (default {DEFAULT_INTERVAL_S:g})")
    group.add_argument("--run-tag", action="append", default=[], metavar="KEY=VALUE", help="tag stored in run.json")
    group.add_argument("--target-commit", default=None, help="git commit of the system under test, stored in run.json")
    group.add_argument("--allowed-hosts", default="", help="comma-separated hosts allowed besides loopback")
    group.add_argument("--exporter-port", type=int, default=0, help="serve Prometheus metrics of the run on PORT (default: off)")
    group.add_argument("--exporter-host", default="127.0.0.1", help="address the exporter listens on (default 127.0.0.1)")
    group.add_argument("--cache-endpoint", action="append", default=[], metavar="NAME",
                       help="sample request keys of this endpoint (e.g. /products/[id]) for the cache advisor; repeatable")
    group.add_argument("--status-stream", action="store_true", default=False, help=argparse.SUPPRESS)


def _tags(items: list[str]) -> dict[str, str]:
    tags = {}
    for item in items:
        key, _, value = item.partition("=")
        tags[key.strip()] = value.strip()
    return tags


class Session:
    """One Locust process's part in a run."""

    def __init__(self, environment: Environment):
        self.env = environment
        self.opts = environment.parsed_options
        self.recorder = Recorder(self.opts.interval)
        self.keys = KeySample(self.opts.cache_endpoint) if self.opts.cache_endpoint else None
        self.run_dir: RunDir | None = None
        self.info: RunInfo | None = None
        self.test_started: float | None = None
        self.finalized = False
        self.peak_users = 0
        self.write_error: str | None = None  # the first failed write to the run directory (a full disk)
        self.workers_final: set[str] = set()
        self.workers_seen: set[str] = set()
        self.worker_requests: dict[str, int] = {}
        self.worker_reported_at: dict[str, float] = {}
        self.lost_workers: dict[str, dict[str, Any]] = {}  # worker id -> when it was lost, what it had reported
        self.class_requests: dict[str, list[int]] = {}  # User class name -> [requests, failures] (workers' too)
        self.requests_by_type: dict[type, list[int]] = {}  # this process's, by the User's type (the cheap key)
        self.class_peak_users: dict[str, int] = {}
        self._errors_written = 0
        self.exporter: Any = None
        # Web UI (no --headless): each test started there is its own run directory.
        self.per_test = not getattr(self.opts, "headless", True)
        self.shape: Shape | None = None
        self.hosts: list[str] = []
        self.quitting = False
        self.stopped_at: float | None = None  # a web UI test's stop: the master waits for its workers' last reports
        # When the load stopped (Locust's test_stopping): the run's duration ends here, not when the
        # master has heard the workers' last reports or the process has written its files.
        self.load_ended: float | None = None
        self.flushing = gevent.lock.RLock()  # one flush of the run directory at a time
        self.reported_since_stop: set[str] = set()
        self.ending: Any = None  # the greenlet closing a web UI test's run directory (master)
        self.open_model: OpenModel | None = None  # a rate shape
        environment.events.request.add_listener(self.on_request)

    @property
    def is_worker(self) -> bool:
        return isinstance(self.env.runner, WorkerRunner)

    @property
    def is_master(self) -> bool:
        return isinstance(self.env.runner, MasterRunner)

    # -- every process ---------------------------------------------------------------

    def on_request(self, request_type: str, name: str, response_time: float, response_length: int,
                   exception: BaseException | None = None, url: str | None = None, context: Any = None,
                   response: Any = None, start_time: Any = None, **_: Any) -> None:  # fmt: skip
        # Every request passes here on the generator's CPU: Locust's keywords are named parameters (no
        # dict is built for them), and the User is looked up once, for both its class's count and (open
        # model) its iteration's lateness.
        error = None if exception is None else locust.stats.StatsError.parse_error(exception)
        now = time.time()
        user = provenance.current_user()
        lateness = getattr(user, "_loadwise_lateness_ms", 0.0) if self.open_model is not None else 0.0
        self.recorder.record(request_type, name, response_time, response_length, error, now, lateness)
        counts = self.requests_by_type.get(type(user))
        if counts is None:
            counts = self.requests_by_type[type(user)] = [0, 0]
        counts[0] += 1
        if exception is not None:
            counts[1] += 1
        if self.keys is not None and exception is None:
            self.keys.offer(name, url, now)

    def _class_counts(self) -> dict[str, list[int]]:
        """Requests and failures per User class name: what workers sent, plus this process's own
        since the last call (which it forgets)."""
        counts = {name: list(pair) for name, pair in self.class_requests.items()}
        for kind, (requests, failures) in self.requests_by_type.items():
            name = provenance.OUTSIDE_USERS if kind is type(None) else kind.__name__
            pair = counts.setdefault(name, [0, 0])
            pair[0], pair[1] = pair[0] + requests, pair[1] + failures
        self.requests_by_type = {}
        self.class_requests = counts
        return counts

    # -- workers -------------------------------------------------------------------------

    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        stopped = self.env.runner.state == locust.runners.STATE_STOPPED
        if self.open_model is not None:  # before the drain: arrivals dropped at the stop go in this report
            self.open_model.report(data, stopped)
        data["loadwise"] = self.recorder.drain()
        data["loadwise_classes"], self.class_requests = self._class_counts(), {}  # only what is new since the last report
        if self.keys is not None:
            data["loadwise_keys"] = self.keys.drain()
        data["loadwise_stopped"] = stopped

    def on_arrivals_message(self, environment: Environment, msg: Message, **_: Any) -> None:
        """The master's plan for this worker: the rate shape, its share of the arrivals, the start time."""
        plan = msg.data
        try:
            shape = shape_of_plan(plan)
        except (KeyError, TypeError, ShapeError) as exc:
            log.error("loadwise: cannot follow the master's open-model plan: %s", exc)
            return
        if not all(getattr(u, "_loadwise_open_model", False) for u in self.env.user_classes):
            log.error("loadwise: this worker's users ignore the master's rate shape: start it with --shape %s", plan["shape"])
            return
        if self.open_model is None or self.open_model.shape != shape:
            self.open_model = OpenModel(self.env, self.recorder, shape)
        self.open_model.follow(plan)

    # -- local runner and master ---------------------------------------------------------

    def start(self) -> None:
        self.allowed = [h.strip() for h in self.opts.allowed_hosts.split(",") if h.strip()]
        try:
            # With the web UI the host may still come from its form: checked there (see _check_swarm).
            self.hosts = self._hosts(required=not self.per_test)
            for host in self.hosts:
                check_host_allowed(host, self.allowed)
        except ConfigError as exc:
            log.error("loadwise: %s", exc)
            sys.exit(2)
        try:
            self.shape = self._build_shape()
        except ShapeError as exc:
            log.error("loadwise: %s", exc)
            sys.exit(2)
        if self.opts.exporter_port:
            self._serve_metrics(self.opts.exporter_port)
        # Locust installs its own SIGTERM handler only after a shape run ends; until then
        # SIGTERM (Kubernetes, CI timeouts) would kill the process before it writes the
        # run's last intervals. Stop the runner instead; Locust then shuts down as on Ctrl-C.
        gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(self.env.runner.quit))
        events.quitting.add_listener(self.on_quitting)
        events.test_stopping.add_listener(self.on_test_stopping)
        if self.is_master:
            events.worker_report.add_listener(self.on_worker_report)
        if self.per_test:
            events.test_start.add_listener(self.on_ui_test_start)
            events.test_stop.add_listener(self.on_ui_test_stop)
            if self.env.web_ui is not None:
                self.env.web_ui.app.before_request(self._check_swarm)
            log.info("loadwise: each test started from the web UI is recorded in its own run directory under %s",
                     self.opts.run_dir or self.opts.runs_dir)  # fmt: skip
        else:
            path = Path(self.opts.run_dir) if self.opts.run_dir else new_run_path(Path(self.opts.runs_dir), self.opts.scenario)
            self._open_run(path)
            events.test_start.add_listener(self.on_test_start)
            if self.is_master:
                events.test_stop.add_listener(self.on_master_test_stop)
        gevent.spawn(self._flush_loop)

    def _open_run(self, path: Path) -> None:
        shape = self.shape
        self.info = RunInfo(
            id=path.name,
            scenario=self.opts.scenario,
            host=redact(", ".join(self.hosts)),  # http://user:PASS@host and ?token= stay out of run.json
            shape=shape.name if shape else type(self.own_shape).__name__ if self.own_shape else None,
            shape_params=shape.params() if shape else {"source": "locustfile"} if self.own_shape else
            {"users": self.opts.num_users, "duration_s": self.opts.run_time},
            started_at=iso_utc(time.time()),
            workers=self.opts.expect_workers if self.is_master else 0,
            interval_s=self.opts.interval,
            locust_version=locust.__version__,
            loadwise_version=loadwise.__version__,
            target_commit=self.opts.target_commit,
            tags=_tags(self.opts.run_tag),
            locust=provenance.locust_record(self.env),
        )
        self.run_dir = RunDir(path).create(self.info)
        log.info("loadwise: recording to %s", path)
        self._announce("started")

    def _announce(self, what: str) -> None:
        """Tell `loadwise run` (on the status stream) which run directory started or finished."""
        if self.opts.status_stream and self.run_dir is not None:
            print(f"{RUN_DIR_PREFIX}{what} {self.run_dir.path}", flush=True)

    # -- the web UI: one run directory per test ----------------------------------------

    def _check_swarm(self) -> Any:
        """Refuse a start from the web UI whose host is not allowed, before any user runs."""
        from flask import jsonify, request

        if request.method != "POST" or request.path != "/swarm":
            return None
        host = request.form.get("host") or self.env.host
        try:
            hosts = [host] if host else self._hosts(required=True)
            for each in hosts:
                check_host_allowed(each, self.allowed)
        except ConfigError as exc:
            return jsonify({"success": False, "message": f"loadwise: {exc}", "host": self.env.host})
        return None

    def on_ui_test_start(self, **_: Any) -> None:
        if self.ending is not None:
            self.ending.join()  # the previous test's directory is closed first
        self.hosts = self._hosts(required=False)
        self.worker_requests, self.class_requests, self.class_peak_users = {}, {}, {}
        self.requests_by_type, self.worker_reported_at, self.lost_workers = {}, {}, {}
        self.workers_seen, self.workers_final, self.reported_since_stop = set(), set(), set()
        self.recorder.new_run()
        if isinstance(self.env.shape_class, LoadwiseShape):
            self.env.shape_class.finished = False
        self.keys = KeySample(self.opts.cache_endpoint) if self.opts.cache_endpoint else None
        self.peak_users, self._errors_written, self.write_error, self.stopped_at = 0, 0, None, None
        self.load_ended = None
        base = Path(self.opts.run_dir).parent if self.opts.run_dir else Path(self.opts.runs_dir)
        self._open_run(new_run_path(base, self.opts.scenario))
        self.test_started = time.time()
        self.on_test_start()

    def on_ui_test_stop(self, **_: Any) -> None:
        if self.run_dir is None or self.stopped_at is not None:
            return
        self.stopped_at = time.time()
        if self.is_master:  # workers send their last histograms with their next report (every 3 s)
            self.ending = gevent.spawn(self._end_ui_test_after_reports)
        else:
            self._end_ui_test()

    def _end_ui_test_after_reports(self) -> None:
        deadline = time.monotonic() + FINAL_REPORT_WAIT_S
        while time.monotonic() < deadline:
            # Every connected worker, not only those heard from: a test stopped within a worker's
            # first report interval has not been heard from yet, and its requests are in that report.
            live = {c.id for c in self.env.runner.clients.all if c.state != locust.runners.STATE_MISSING}
            if not live - self.reported_since_stop:
                break
            gevent.sleep(0.1)
        self._end_ui_test()

    def _end_ui_test(self) -> None:
        if self.run_dir is None:
            return
        if self.open_model is not None:
            self.open_model.arrivals.stop()
        self._flush(before=math.inf)
        self._finish()
        self._announce("finished")
        self.run_dir, self.ending = None, None

    def _serve_metrics(self, port: int) -> None:
        runner = self.env.runner
        self.recorder.totals = {}
        workers = (lambda: runner.worker_count) if self.is_master else (lambda: 0)
        try:
            from loadwise.engine.exporter import LocustMetrics, serve  # prometheus_client: only when asked for

            self.exporter = serve(LocustMetrics(self.recorder, lambda: runner.user_count, workers), port, self.opts.exporter_host)
        except OSError as exc:
            log.error("loadwise: cannot serve metrics on %s:%s: %s", self.opts.exporter_host, port, exc)
            sys.exit(2)
        log.info("loadwise: Prometheus metrics on http://%s:%s/metrics", self.opts.exporter_host, port)

    def _hosts(self, required: bool = True) -> list[str]:
        """The hosts the load goes to: --host when given (Locust then uses it for every User
        class), else each class's own `host`, as plain Locust does. Not `required`: the
        hosts known so far (the web UI's form may give the rest)."""
        if self.env.host:
            return [self.env.host]
        nameless = [u.__name__ for u in self.env.user_classes if not getattr(u, "host", None)]
        if nameless and not required:
            return sorted({u.host for u in self.env.user_classes if getattr(u, "host", None)})
        if nameless:
            raise ConfigError(f"no --host given and User class {', '.join(nameless)} sets no `host`: "
                              "pass --host URL or set `host = ...` on the class")  # fmt: skip
        return sorted({u.host for u in self.env.user_classes})

    @property
    def own_shape(self) -> Any:
        """The locustfile's own LoadTestShape instance, when that is what runs."""
        shape = self.env.shape_class
        return shape if shape is not None and not isinstance(shape, LoadwiseShape) else None

    def _build_shape(self) -> Shape | None:
        """The --shape as configured (auto: constant, unless the locustfile's own shape runs);
        also hands it to Locust's shape instance."""
        opts = self.opts
        if not opts.shape or self.own_shape is not None:
            return None
        auto = opts.shape == AUTO_SHAPE
        run_time = opts.run_time or (DEFAULT_DURATION_S if auto else None)
        if not run_time:
            raise ShapeError("--shape needs a run time (-t/--run-time)")
        shape = build_shape("constant" if auto else opts.shape, opts.num_users or 1, float(run_time), opts.spawn_rate,
                            parse_shape_params(opts.shape_param), arrival_options(opts))  # fmt: skip
        pool = None
        if isinstance(shape, RateShape):
            shape = seeded(shape)
            self.open_model = OpenModel(self.env, self.recorder, shape)
            pool = functools.partial(self.open_model.pool, self.is_master)
        if isinstance(self.env.shape_class, LoadwiseShape):
            self.env.shape_class.configure(shape, pool)
        return shape

    def _own_shape_ended(self) -> bool:
        """Whether the locustfile's shape has nothing more to run (its tick says None now)."""
        if self.own_shape is None:
            return False
        try:
            return self.own_shape.tick() is None
        except Exception:  # a shape that cannot be asked again: not known to have ended
            return False

    def on_test_start(self, **_: Any) -> None:
        if self.test_started is None or self.per_test:
            self.test_started = self.test_started or time.time()
            assert self.info is not None and self.run_dir is not None
            self.info.started_at = iso_utc(self.test_started)
            self.run_dir.write_info(self.info)
            if self.open_model is not None:
                self.open_model.start(self.test_started, self.is_master)
            if self.shape is not None and isinstance(self.env.shape_class, LoadwiseShape):
                gevent.spawn(self._stop_at_planned_end, self.test_started, self.shape.duration_s)

    def _stop_at_planned_end(self, started: float, duration_s: float) -> None:
        """Stop the load at the shape's planned end: Locust asks a shape once a second, and on a
        master whose ramp-up blocks the ticks drift, so a 5 s shape would otherwise run up to 6 s."""
        gevent.sleep(max(started + duration_s - time.time(), 0.0))
        runner = self.env.runner
        if self.test_started != started or runner.state not in (locust.runners.STATE_RUNNING, locust.runners.STATE_SPAWNING):
            return  # stopped already, or a later test of the web UI runs now
        if isinstance(self.env.shape_class, LoadwiseShape):
            self.env.shape_class.finished = True
        log.info("loadwise: the shape's planned end (%gs) reached, stopping", duration_s)
        if self.per_test:
            runner.stop()
        else:
            runner.quit()

    def on_test_stopping(self, **_: Any) -> None:
        if self.load_ended is None and self.test_started is not None:
            self.load_ended = time.time()

    def on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        if self.keys is not None and data.get("loadwise_keys"):
            self.keys.absorb(data["loadwise_keys"])
        for name, (requests, failures) in (data.get("loadwise_classes") or {}).items():
            counts = self.class_requests.setdefault(name, [0, 0])
            counts[0], counts[1] = counts[0] + requests, counts[1] + failures
        payload = data.get("loadwise")
        if payload:
            sent = self.recorder.absorb(payload)
            self.worker_requests[client_id] = self.worker_requests.get(client_id, 0) + sent
        self.workers_seen.add(client_id)
        self.worker_reported_at[client_id] = time.time()
        if self.stopped_at is not None:
            self.reported_since_stop.add(client_id)
        if data.get("loadwise_stopped"):
            self.workers_final.add(client_id)
        if self.open_model is not None:
            self.open_model.absorb(client_id, data)

    def on_master_test_stop(self, **_: Any) -> None:
        """Collect every worker's final report before Locust stops listening to them.

        Locust's own `quit` waits only 0.5 s for final reports; on a busy machine a worker
        needs longer, and its last seconds of histograms would be lost.
        """
        runner = self.env.runner
        for client in runner.clients.all:
            runner.server.send_to_client(Message("quit", None, client.id))
        deadline = time.monotonic() + FINAL_REPORT_WAIT_S
        while time.monotonic() < deadline:
            live = {c.id for c in runner.clients.all if c.state != locust.runners.STATE_MISSING}
            if not live - self.workers_final:  # every connected worker, heard from yet or not (a short run)
                break
            gevent.sleep(0.1)

    def _flush_loop(self) -> None:
        grace = MASTER_GRACE_S if self.is_master else LOCAL_GRACE_S
        while not self.finalized:
            now = time.time()
            runner = self.env.runner
            if runner.state in (locust.runners.STATE_RUNNING, locust.runners.STATE_SPAWNING):
                self.recorder.sample_users(runner.user_count, now)
                self.peak_users = max(self.peak_users, runner.user_count)
                by_class = runner.reported_user_classes_count if self.is_master else runner.user_classes_count
                for name, count in by_class.items():
                    self.class_peak_users[name] = max(self.class_peak_users.get(name, 0), count)
            if self.is_master:
                self._note_lost_workers(now)
            if self.run_dir is not None:  # None between the tests of a web UI session
                self._flush(before=now - grace)
            if self.opts.status_stream:
                print(self._status(now).to_line(), flush=True)
            gevent.sleep(FLUSH_EVERY_S)

    def _note_lost_workers(self, now: float) -> None:
        """A worker Locust marked missing (no heartbeat for 3 s) is lost to this run: what it had
        reported stays in the run; what it sent since its last report never reached the master."""
        if self.test_started is None:
            return
        for client in self.env.runner.clients.all:
            if client.state != locust.runners.STATE_MISSING or client.id in self.lost_workers:
                continue
            reported = self.worker_reported_at.get(client.id)
            self.lost_workers[client.id] = {"id": client.id, "lost_at": iso_utc(now),
                                            "last_report_at": iso_utc(reported) if reported else None,
                                            "requests": self.worker_requests.get(client.id, 0)}  # fmt: skip
            log.warning("loadwise: worker %s lost (no heartbeat): its %d requests up to %s are kept; what it sent after is "
                        "not in the run", client.id, self.worker_requests.get(client.id, 0),
                        iso_utc(reported) if reported else "its first report")  # fmt: skip

    def _flush(self, before: float) -> None:
        # One flush at a time: an open-model flush yields between cells, and the final flush (at
        # quitting) must not run, and write the summary, while the loop's is half done.
        with self.flushing:
            if self.run_dir is not None:
                self._flush_now(before)

    def _flush_now(self, before: float) -> None:
        assert self.run_dir is not None
        try:
            pause = (lambda: gevent.sleep(0)) if self.open_model is not None and math.isfinite(before) else None
            self.run_dir.append_intervals(self.recorder.close(before, pause))
            self.run_dir.append_iterations(self.recorder.close_iterations(before))
            total_errors = sum(self.recorder.errors.values())
            if total_errors != self._errors_written:
                self.run_dir.write_errors(self.recorder.error_rows())
                self._errors_written = total_errors
        except OSError as exc:  # a full disk must not kill the load test; say it once per flush
            self.write_error = self.write_error or f"{exc.strerror or exc} (from {iso_utc(time.time())})"
            log.error("loadwise: cannot write to %s: %s", self.run_dir.path, exc)

    def _status(self, now: float) -> Status:
        total = self.env.runner.stats.total
        p95 = total.get_current_response_time_percentile(0.95)
        return Status(
            elapsed_s=round(now - self.test_started, 1) if self.test_started else 0.0,
            total_s=float(self.opts.run_time) if self.opts.run_time else None,
            users=self.env.runner.user_count,
            rps=round(total.current_rps, 1),
            p95_ms=p95,
            requests=self.recorder.total_requests,
            failures=self.recorder.total_failures,
            grouped_names=len(self.recorder.grouped_names),
            **(self.open_model.status() if self.open_model is not None else {}),
        )

    def on_quitting(self, **_: Any) -> None:
        if self.finalized:
            return
        runner = self.env.runner
        # On Ctrl-C and SIGTERM Locust fires `quitting` before stopping the users: stop
        # them first so that nothing is recorded after the run directory is closed.
        self.quitting = True
        runner.quit()  # a web UI test still running ends here (test_stop), as interrupted
        if self.per_test:
            if self.ending is not None:
                self.ending.join()
            self._end_ui_test()
            self.finalized = True
            return
        self.finalized = True
        if self.open_model is not None:
            self.open_model.arrivals.stop()
        self._flush(before=math.inf)
        self._finish()

    def _finish(self) -> None:
        assert self.info is not None and self.run_dir is not None
        ended = time.time()
        load_ended = min(self.load_ended or ended, ended)
        elapsed = load_ended - (self.test_started or load_ended)
        shape = self.env.shape_class
        run_time = self.opts.run_time
        planned_end_reached = (bool(getattr(shape, "finished", False)) or bool(run_time and elapsed >= run_time - 1.0)
                               or self._own_shape_ended())  # fmt: skip
        stopped_by_user = self.per_test and not self.quitting and not planned_end_reached  # the web UI's Stop
        if self.own_shape is not None:  # what the locustfile's shape actually produced
            self.info.shape_params = {"source": "locustfile", "peak_users": self.peak_users, "duration_s": round(elapsed, 3)}
        elif self.per_test and self.shape is None:  # users and spawn rate as the web UI's form gave them
            self.info.shape_params = {"source": "web UI", "users": self.opts.num_users, "spawn_rate": self.opts.spawn_rate,
                                      "peak_users": self.peak_users, "duration_s": round(elapsed, 3)}  # fmt: skip
        succeeded = self.recorder.total_requests - self.recorder.total_failures
        if stopped_by_user and succeeded:
            self.info.status, self.info.status_reason = STATUS_COMPLETED, "stopped by the user from the web UI"
        elif not planned_end_reached and not stopped_by_user:
            self.info.status, self.info.status_reason = STATUS_INTERRUPTED, "stopped before the planned end"
        elif succeeded == 0:
            self.info.status = STATUS_FAILED
            self.info.status_reason = f"no request succeeded ({self.recorder.total_failures} failed)"
        else:
            self.info.status, self.info.status_reason = STATUS_COMPLETED, None
        if self.write_error:  # what was recorded after that point is not in the run directory
            self.info.status = STATUS_FAILED
            self.info.status_reason = f"the run directory could not be written: {self.write_error}"
        self.info.ended_at = iso_utc(ended)
        self.info.load_ended_at = iso_utc(load_ended)
        self.info.worker_requests = dict(self.worker_requests)
        if self.is_master:
            self._note_lost_workers(ended)
        self.info.lost_workers = [self.lost_workers[k] for k in sorted(self.lost_workers)]
        if self.open_model is not None:
            self.info.open_model = self.open_model.record()
        provenance.add_class_counts(self.info.locust, self._class_counts(), self.class_peak_users)
        if self.recorder.grouped_names:
            self.info.grouped_names = {"max_names": self.recorder.max_names, "grouped": len(self.recorder.grouped_names),
                                       "as": OTHER_NAME}  # fmt: skip
        try:
            self.run_dir.write_exceptions(provenance.exception_rows(self.env.runner))
            if self.keys is not None:
                self.run_dir.write_key_sample(sorted((t, redact(k)) for t, k, _ in self.keys.entries))
                self.info.key_sample = {"endpoints": sorted(self.keys.endpoints), "rate": self.keys.rate,
                                        "max_keys": self.keys.max_keys, "kept": len(self.keys.entries)}  # fmt: skip
            self.run_dir.write_info(self.info)
            from loadwise.analysis import summary as summaries  # pandas: only now, on the master, once

            summaries.write_summary(self.run_dir)
        except OSError as exc:  # `loadwise run` finishes run.json when it can; plain locust says so
            log.error("loadwise: cannot write to %s: %s; the run %s", self.run_dir.path, exc, self.info.status)
            return
        log.info("loadwise: run %s %s; run directory %s", self.info.id, self.info.status, self.run_dir.path)


def on_init(environment: Environment, **_: Any) -> None:
    session = Session(environment)
    if session.is_worker:
        environment.events.report_to_master.add_listener(session.on_report_to_master)
        environment.runner.register_message(ARRIVALS_MESSAGE, session.on_arrivals_message)
    else:
        session.start()


def register() -> None:
    """Attach loadwise to Locust's events (idempotent: a locustfile may be imported twice)."""
    if getattr(events, "_loadwise_registered", False):
        return
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(on_init)
    events._loadwise_registered = True  # type: ignore[attr-defined]
