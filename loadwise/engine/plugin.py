"""The Locust side of loadwise: which part listens to which Locust event, and the run directory.

Imported by `locustfile.py` (and so by every Locust process: local, master and
workers). On a local or master process it creates the run directory, appends closed
intervals as they close and finalizes `run.json` and `summary.json` when Locust quits,
whether the run completed, was interrupted (Ctrl-C, SIGTERM) or failed. The other parts,
each in its module of loadwise.engine: `options` (the command line), `distributed` (what
workers send, what the master merges), `webui` (one run directory per test of the web UI),
`shape` (the chosen shape and its planned end), `mix` (several scenarios in one run),
`closing` (run.json's verdict and summary.json when the run ends), `status` (the run's
verdict), `stream` (what `loadwise run` reads on the process's output).
"""

from __future__ import annotations

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
from locust.runners import MasterRunner, WorkerRunner

import loadwise
from loadwise.analysis.redact import redact
from loadwise.analysis.rundir import RunDir, RunInfo, iso_utc, new_run_path
from loadwise.analysis.thresholds import ThresholdError, parse_abort
from loadwise.config import ConfigError, check_host_allowed
from loadwise.engine import closing, provenance
from loadwise.engine.abort import AbortWatch, Breach
from loadwise.engine.checks import CheckCounts
from loadwise.engine.distributed import MASTER_GRACE_S, MasterSide, WorkerSide
from loadwise.engine.mix import GATES_MESSAGE, Mix, ScenariosShape
from loadwise.engine.open_model import ARRIVALS_MESSAGE, OpenModel, seeded
from loadwise.engine.options import add_arguments, run_tags
from loadwise.engine.recorder import KeySample, Recorder, error_rows
from loadwise.engine.shape import LoadwiseShape, chosen_shape, own_shape
from loadwise.engine.stream import RUN_DIR_PREFIX, Status
from loadwise.engine.webui import WebUITests
from loadwise.scenarios.plan import duration_s as scenarios_duration_s
from loadwise.shapes.base import Shape, ShapeError
from loadwise.shapes.rates import RateShape

log = logging.getLogger("loadwise")

FLUSH_EVERY_S = 1.0
LOCAL_GRACE_S = 0.5  # how long a local runner keeps an interval open (a master: MASTER_GRACE_S)


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
        self.class_requests: dict[str, list[int]] = {}  # User class name -> [requests, failures] (workers' too)
        self.requests_by_type: dict[type, list[int]] = {}  # this process's, by the User's type (the cheap key)
        self.class_peak_users: dict[str, int] = {}
        self._errors_written = 0
        self.exporter: Any = None
        self.master = MasterSide(self) if self.is_master else None  # what the workers sent (a master only)
        # Web UI (no --headless): each test started there is its own run directory.
        self.per_test = not getattr(self.opts, "headless", True)
        self.web_ui = WebUITests(self) if self.per_test else None
        self.shape: Shape | None = None
        self.hosts: list[str] = []
        self.allowed: list[str] = []
        self.quitting = False
        # When the load stopped (Locust's test_stopping): the run's duration ends here, not when the
        # master has heard the workers' last reports or the process has written its files.
        self.load_ended: float | None = None
        self.flushing = gevent.lock.RLock()  # one flush of the run directory at a time
        self.open_model: OpenModel | None = None  # a rate shape
        self.mix: Mix | None = None  # a run of several scenarios (--scenarios)
        self.abort: AbortWatch | None = None  # --abort-on rules (a local runner or the master judges them)
        self.breach: Breach | None = None  # the rule that stopped the run
        self.checks = CheckCounts()  # loadwise.check()'s counts: this process's users' (a master: its workers')
        environment.loadwise_checks = self.checks  # type: ignore[attr-defined]  # where check() finds them
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
        if self.mix is None:
            lateness = getattr(user, "_loadwise_lateness_ms", 0.0) if self.open_model is not None else 0.0
            self.recorder.record(request_type, name, response_time, response_length, error, now, lateness)
        else:  # each scenario's requests in its own recorder (a request from outside its users: the run's own)
            lateness = getattr(user, "_loadwise_lateness_ms", 0.0)
            recorder = self.mix.recorder_of.get(type(user), self.recorder)
            recorder.record(request_type, name, response_time, response_length, error, now, lateness)
        counts = self.requests_by_type.get(type(user))
        if counts is None:
            counts = self.requests_by_type[type(user)] = [0, 0]
        counts[0] += 1
        if exception is not None:
            counts[1] += 1
        if self.keys is not None and exception is None:
            self.keys.offer(name, url, now)

    def recorders(self) -> list[Recorder]:
        """The run's own recorder and, in a run of several scenarios, each scenario's."""
        return [self.recorder] if self.mix is None else [self.recorder, *self.mix.recorders.values()]

    @property
    def total_requests(self) -> int:
        return sum(r.total_requests for r in self.recorders())

    @property
    def total_failures(self) -> int:
        return sum(r.total_failures for r in self.recorders())

    @property
    def grouped_names(self) -> set[int]:
        """The endpoints recorded as OTHER_NAME (hashed), in every recorder."""
        return set().union(*(r.grouped_names for r in self.recorders()))

    def class_counts(self) -> dict[str, list[int]]:
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

    # -- local runner and master ---------------------------------------------------------

    def start(self) -> None:
        self.allowed = [h.strip() for h in self.opts.allowed_hosts.split(",") if h.strip()]
        try:
            # With the web UI the host may still come from its form: checked there (WebUITests.check_swarm).
            self.hosts = self.find_hosts(required=not self.per_test)
            for host in self.hosts:
                check_host_allowed(host, self.allowed)
        except ConfigError as exc:
            log.error("loadwise: %s", exc)
            sys.exit(2)
        try:
            self.shape = self._configure_shape()
            rules = [parse_abort(text) for text in self.opts.abort_on]
        except (ShapeError, ThresholdError) as exc:
            log.error("loadwise: %s", exc)
            sys.exit(2)
        self.abort = AbortWatch(rules, self.opts.interval) if rules else None
        if self.opts.exporter_port:
            self._serve_metrics(self.opts.exporter_port)
        # Locust installs its own SIGTERM handler only after a shape run ends; until then
        # SIGTERM (Kubernetes, CI timeouts) would kill the process before it writes the
        # run's last intervals. Stop the runner instead; Locust then shuts down as on Ctrl-C.
        gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(self.env.runner.quit))
        # Ctrl-C as Locust means it (KeyboardInterrupt in the main greenlet, which then shuts down),
        # but always there: left to Python, it lands in whichever greenlet runs, and Locust's
        # stats-history greenlet swallows it (the run then went on to its planned end), or it
        # lands in the flush between taking closed intervals and writing them (they were lost).
        gevent.signal_handler(signal.SIGINT, _interrupt_main)
        events.quitting.add_listener(self.on_quitting)
        events.test_stopping.add_listener(self.on_test_stopping)
        if self.master is not None:
            events.worker_report.add_listener(self.master.on_worker_report)
        if self.web_ui is not None:
            self.web_ui.listen()
        else:
            path = Path(self.opts.run_dir) if self.opts.run_dir else new_run_path(Path(self.opts.runs_dir), self.opts.scenario)
            self.open_run(path)
            events.test_start.add_listener(self.on_test_start)
            if self.master is not None:
                events.test_stop.add_listener(self.master.on_test_stop)
        gevent.spawn(self._flush_loop)

    def find_hosts(self, required: bool = True) -> list[str]:
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

    def _configure_shape(self) -> Shape | None:
        """The --shape, handed to Locust's shape instance; a rate shape gets its open model; several
        scenarios (their shape class) their Mix."""
        shape = chosen_shape(self.env) if not isinstance(self.env.shape_class, ScenariosShape) else None
        if isinstance(self.env.shape_class, ScenariosShape):
            if self.per_test:
                raise ShapeError("scenarios run headless (--headless, or `loadwise run` without --web-ui)")
            self.mix = Mix(self.env, list(self.env.shape_class.scenarios), self.opts.interval, "master" if self.is_master else "local")
            self.env.shape_class.mix = self.mix
            return None
        if shape is None:
            return None
        pool = None
        if isinstance(shape, RateShape):
            shape = seeded(shape)
            self.open_model = OpenModel(self.env, self.recorder, shape)
            pool = functools.partial(self.open_model.pool, self.is_master)
        if isinstance(self.env.shape_class, LoadwiseShape):
            self.env.shape_class.configure(shape, pool)
        return shape

    def _serve_metrics(self, port: int) -> None:
        runner = self.env.runner
        self.recorder.totals = {}
        for recorder in self.recorders():  # the exporter's whole-run cells: one set for every scenario
            recorder.totals = self.recorder.totals
        workers = (lambda: runner.worker_count) if self.is_master else (lambda: 0)
        try:
            from loadwise.engine.exporter import LocustMetrics, serve  # prometheus_client: only when asked for

            self.exporter = serve(LocustMetrics(self.recorder, lambda: runner.user_count, workers), port, self.opts.exporter_host)
        except OSError as exc:
            log.error("loadwise: cannot serve metrics on %s:%s: %s", self.opts.exporter_host, port, exc)
            sys.exit(2)
        log.info("loadwise: Prometheus metrics on http://%s:%s/metrics", self.opts.exporter_host, port)

    def on_test_start(self, **_: Any) -> None:
        if self.test_started is None or self.per_test:
            self.test_started = self.test_started or time.time()
            assert self.info is not None and self.run_dir is not None
            self.info.started_at = iso_utc(self.test_started)
            self.run_dir.write_info(self.info)
            if self.open_model is not None:
                self.open_model.start(self.test_started, self.is_master)
            if self.abort is not None:
                self.abort.start(self.test_started)
            if self.mix is not None:
                self.mix.start(self.test_started)
                gevent.spawn(self._stop_at_planned_end, self.test_started, scenarios_duration_s(self.mix.scenarios))
            elif self.shape is not None and isinstance(self.env.shape_class, LoadwiseShape):
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

    # -- the run directory -------------------------------------------------------------

    def new_run(self) -> None:
        """Forget the previous run (a web UI session's tests, one after another)."""
        if self.master is not None:
            self.master.new_run()
        self.class_requests, self.class_peak_users, self.requests_by_type = {}, {}, {}
        self.recorder.new_run()
        if isinstance(self.env.shape_class, LoadwiseShape):
            self.env.shape_class.finished = False
        self.keys = KeySample(self.opts.cache_endpoint) if self.opts.cache_endpoint else None
        self.peak_users, self._errors_written, self.write_error = 0, 0, None
        self.load_ended, self.breach = None, None
        self.checks.counts = {}

    def open_run(self, path: Path) -> None:
        shape, own = self.shape, own_shape(self.env)
        if self.mix is not None:
            own = None
            params = {"scenarios": [s.name for s in self.mix.scenarios], "duration_s": scenarios_duration_s(self.mix.scenarios)}
        else:
            params = shape.params() if shape else {"source": "locustfile"} if own else {"users": self.opts.num_users, "duration_s": self.opts.run_time}
        self.info = RunInfo(
            id=path.name,
            scenario=self.opts.scenario,
            host=redact(", ".join(self.hosts)),  # http://user:PASS@host and ?token= stay out of run.json
            shape="scenarios" if self.mix is not None else shape.name if shape else type(own).__name__ if own else None,
            shape_params=params,
            started_at=iso_utc(time.time()),
            workers=self.opts.expect_workers if self.is_master else 0,
            interval_s=self.opts.interval,
            locust_version=locust.__version__,
            loadwise_version=loadwise.__version__,
            target_commit=self.opts.target_commit,
            tags=run_tags(self.opts.run_tag),
            locust=provenance.locust_record(self.env),
            scenarios=self.mix.records() if self.mix is not None else [],
        )
        self.run_dir = RunDir(path).create(self.info)
        log.info("loadwise: recording to %s", path)
        self.announce("started")

    def announce(self, what: str) -> None:
        """Tell `loadwise run` (on the status stream) which run directory started or finished."""
        if self.opts.status_stream and self.run_dir is not None:
            print(f"{RUN_DIR_PREFIX}{what} {self.run_dir.path}", flush=True)

    def _flush_loop(self) -> None:
        grace = MASTER_GRACE_S if self.is_master else LOCAL_GRACE_S
        while not self.finalized:
            now = time.time()
            runner = self.env.runner
            if runner.state in (locust.runners.STATE_RUNNING, locust.runners.STATE_SPAWNING):
                self._sample_users(now)
                by_class = runner.reported_user_classes_count if self.is_master else runner.user_classes_count
                for name, count in by_class.items():
                    self.class_peak_users[name] = max(self.class_peak_users.get(name, 0), count)
            if self.master is not None:
                self.master.note_lost(now)
            if self.run_dir is not None:  # None between the tests of a web UI session
                self.flush(before=now - grace)
            if self.opts.status_stream:
                print(self._status(now).to_line(), flush=True)
            gevent.sleep(FLUSH_EVERY_S)

    def _sample_users(self, now: float) -> None:
        """The users active now, into each interval (a run of several scenarios: each one's too)."""
        if self.mix is None:
            users = self.env.runner.user_count
            self.recorder.sample_users(users, now)
        else:  # Locust's count is every pool; the active ones are those let through the gates
            by_scenario = self.mix.users()
            users = sum(by_scenario.values())
            self.recorder.sample_users(users, now)
            for name, recorder in self.mix.recorders.items():
                recorder.sample_users(users, now, by_scenario[name])
        self.peak_users = max(self.peak_users, users)

    def flush(self, before: float) -> None:
        # One flush at a time: an open-model flush yields between cells, and the final flush (at
        # quitting) must not run, and write the summary, while the loop's is half done.
        with self.flushing:
            if self.run_dir is not None:
                self._flush_now(before)

    def _flush_now(self, before: float) -> None:
        assert self.run_dir is not None
        try:
            paced = self.open_model is not None or self.mix is not None
            pause = (lambda: gevent.sleep(0)) if paced and math.isfinite(before) else None
            rows = [row for recorder in self.recorders() for row in recorder.close(before, pause)]
            self.run_dir.append_intervals(rows)
            if self.abort is not None:
                self._judge_abort(rows)
            self.run_dir.append_iterations([row for recorder in self.recorders() for row in recorder.close_iterations(before)])
            total_errors = sum(sum(recorder.errors.values()) for recorder in self.recorders())
            if total_errors != self._errors_written:
                self.run_dir.write_errors(error_rows(self.recorders()))  # errors.csv is the run's: every scenario's
                self._errors_written = total_errors
        except OSError as exc:  # a full disk must not kill the load test; say it once per flush
            self.write_error = self.write_error or f"{exc.strerror or exc} (from {iso_utc(time.time())})"
            log.error("loadwise: cannot write to %s: %s", self.run_dir.path, exc)

    def _judge_abort(self, rows: list[dict[str, Any]]) -> None:
        assert self.abort is not None
        self.abort.add_rows(rows)
        running = self.env.runner.state in (locust.runners.STATE_RUNNING, locust.runners.STATE_SPAWNING)
        if self.breach is not None or self.quitting or not running:
            return
        breach = self.abort.judge(time.time(), self.recorders())
        if breach is None:
            return
        self.breach = breach
        log.warning("loadwise: %s; stopping the run", breach.describe())
        self.env.process_exit_code = 1  # plain `locust` exits 1 too
        # Stopped from its own greenlet: quitting flushes the run directory, under the lock held here.
        gevent.spawn(self.env.runner.stop if self.per_test else self.env.runner.quit)

    def _status(self, now: float) -> Status:
        total = self.env.runner.stats.total
        p95 = total.get_current_response_time_percentile(0.95)
        return Status(
            elapsed_s=round(now - self.test_started, 1) if self.test_started else 0.0,
            total_s=float(self.opts.run_time) if self.opts.run_time else
            scenarios_duration_s(self.mix.scenarios) if self.mix is not None else None,
            users=self.env.runner.user_count if self.mix is None else sum(self.mix.users().values()),
            rps=round(total.current_rps, 1),
            p95_ms=p95,
            requests=self.total_requests,
            failures=self.total_failures,
            grouped_names=len(self.grouped_names),
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
        if self.web_ui is not None:
            self.web_ui.close()
            self.finalized = True
            return
        self.finalized = True
        if self.open_model is not None:
            self.open_model.arrivals.stop()
        if self.mix is not None:
            self.mix.stop()
        self.flush(before=math.inf)
        self.finish()

    def finish(self) -> None:
        closing.finish(self)


def _interrupt_main() -> None:
    gevent.get_hub().parent.throw(KeyboardInterrupt)


def on_init(environment: Environment, **_: Any) -> None:
    session = Session(environment)
    if session.is_worker:
        worker = WorkerSide(session)
        environment.events.report_to_master.add_listener(worker.on_report_to_master)
        environment.runner.register_message(ARRIVALS_MESSAGE, worker.on_arrivals_message)
        if isinstance(environment.shape_class, ScenariosShape):  # the master sets its gates and sends its plans
            session.mix = Mix(environment, list(environment.shape_class.scenarios), session.opts.interval, "worker")
            environment.runner.register_message(GATES_MESSAGE, session.mix.on_gates_message)
    else:
        session.start()


def register() -> None:
    """Attach loadwise to Locust's events (idempotent: a locustfile may be imported twice)."""
    if getattr(events, "_loadwise_registered", False):
        return
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(on_init)
    events._loadwise_registered = True  # type: ignore[attr-defined]
