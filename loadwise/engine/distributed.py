"""Distributed runs: what a worker sends its master, and what the master makes of it.

A worker ships what its recorder drained with each of Locust's `report_to_master` (every
3 s); the master merges it on `worker_report`, so percentiles stay exact to the HDR
precision. A rate shape's plan goes the other way (ARRIVALS_MESSAGE). The master notes a
worker Locust marks missing as lost, and waits for every worker's last report before the
run directory is finished.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import gevent
import locust
from locust.env import Environment
from locust.rpc import Message

from loadwise.analysis.rundir import RunInfo, iso_utc
from loadwise.engine.open_model import OpenModel, shape_of_plan
from loadwise.shapes.base import ShapeError

if TYPE_CHECKING:
    from loadwise.engine.plugin import Session

log = logging.getLogger("loadwise")

# Workers report every 3 s (locust.runners.WORKER_REPORT_INTERVAL); the master keeps an
# interval open long enough for every worker's share of it to arrive.
MASTER_GRACE_S = 7.0
FINAL_REPORT_WAIT_S = 5.0


class WorkerSide:
    """A worker's part: its reports to the master, and the master's open-model plan."""

    def __init__(self, session: Session):
        self.session = session

    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        s = self.session
        stopped = s.env.runner.state == locust.runners.STATE_STOPPED
        if s.open_model is not None:  # before the drain: arrivals dropped at the stop go in this report
            s.open_model.report(data, stopped)
        data["loadwise"] = s.recorder.drain()
        if s.mix is not None:
            s.mix.report(data, stopped)
        data["loadwise_classes"], s.class_requests = s.class_counts(), {}  # only what is new since the last report
        data["loadwise_checks"] = s.checks.drain()
        if s.keys is not None:
            data["loadwise_keys"] = s.keys.drain()
        data["loadwise_stopped"] = stopped

    def on_arrivals_message(self, environment: Environment, msg: Message, **_: Any) -> None:
        """The master's plan for this worker: the rate shape, its share of the arrivals, the start time."""
        s = self.session
        plan = msg.data
        if plan.get("scenario"):  # one rate scenario's plan, in a run of several
            try:
                if s.mix is None:
                    raise ShapeError("this worker runs no scenarios: start it with the master's --scenarios")
                s.mix.follow_plan(plan)
            except (KeyError, TypeError, ShapeError) as exc:
                log.error("loadwise: cannot follow the master's plan for scenario %s: %s", plan.get("scenario"), exc)
            return
        try:
            shape = shape_of_plan(plan)
        except (KeyError, TypeError, ShapeError) as exc:
            log.error("loadwise: cannot follow the master's open-model plan: %s", exc)
            return
        if not all(getattr(u, "_loadwise_open_model", False) for u in s.env.user_classes):
            log.error("loadwise: this worker's users ignore the master's rate shape: start it with --shape %s", plan["shape"])
            return
        if s.open_model is None or s.open_model.shape != shape:
            s.open_model = OpenModel(s.env, s.recorder, shape)
        s.open_model.follow(plan)


class MasterSide:
    """A master's part: merging its workers' reports, and what it knows of each worker in this run."""

    def __init__(self, session: Session):
        self.session = session
        self.new_run()

    def new_run(self) -> None:
        """Forget the workers' part in the previous run (the web UI's next test)."""
        self.final: set[str] = set()  # sent their last report (the one after they stopped)
        self.seen: set[str] = set()
        self.requests: dict[str, int] = {}
        self.reported_at: dict[str, float] = {}
        self.lost: dict[str, dict[str, Any]] = {}  # worker id -> when it was lost, what it had reported
        self.since_stop: set[str] | None = None  # after the web UI's Stop: the workers heard from since

    def on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        s = self.session
        if s.keys is not None and data.get("loadwise_keys"):
            s.keys.absorb(data["loadwise_keys"])
        for name, (requests, failures) in (data.get("loadwise_classes") or {}).items():
            counts = s.class_requests.setdefault(name, [0, 0])
            counts[0], counts[1] = counts[0] + requests, counts[1] + failures
        s.checks.absorb(data.get("loadwise_checks"))
        payload = data.get("loadwise")
        sent = s.recorder.absorb(payload) if payload else 0
        if s.mix is not None:
            sent += s.mix.absorb(client_id, data)
        if payload or sent:
            self.requests[client_id] = self.requests.get(client_id, 0) + sent
        self.seen.add(client_id)
        self.reported_at[client_id] = time.time()
        if self.since_stop is not None:
            self.since_stop.add(client_id)
        if data.get("loadwise_stopped"):
            self.final.add(client_id)
        if s.open_model is not None:
            s.open_model.absorb(client_id, data)

    def on_test_stop(self, **_: Any) -> None:
        """Collect every worker's final report before Locust stops listening to them.

        Locust's own `quit` waits only 0.5 s for final reports; on a busy machine a worker
        needs longer, and its last seconds of histograms would be lost.
        """
        runner = self.session.env.runner
        for client in runner.clients.all:
            runner.server.send_to_client(Message("quit", None, client.id))
        self.wait_for(self.final)

    def wait_for(self, heard: set[str]) -> None:
        """Until every connected worker is in `heard` (filled as reports arrive), at most FINAL_REPORT_WAIT_S.

        Every connected worker, not only those heard from: a test stopped within a worker's
        first report interval has not been heard from yet, and its requests are in that report.
        """
        runner = self.session.env.runner
        deadline = time.monotonic() + FINAL_REPORT_WAIT_S
        while time.monotonic() < deadline:
            live = {c.id for c in runner.clients.all if c.state != locust.runners.STATE_MISSING}
            if not live - heard:
                break
            gevent.sleep(0.1)

    def note_lost(self, now: float) -> None:
        """A worker Locust marked missing (no heartbeat for 3 s) is lost to this run: what it had
        reported stays in the run; what it sent since its last report never reached the master."""
        if self.session.test_started is None:
            return
        for client in self.session.env.runner.clients.all:
            if client.state != locust.runners.STATE_MISSING or client.id in self.lost:
                continue
            reported = self.reported_at.get(client.id)
            self.lost[client.id] = {"id": client.id, "lost_at": iso_utc(now),
                                    "last_report_at": iso_utc(reported) if reported else None,
                                    "requests": self.requests.get(client.id, 0)}  # fmt: skip
            log.warning("loadwise: worker %s lost (no heartbeat): its %d requests up to %s are kept; what it sent after is "
                        "not in the run", client.id, self.requests.get(client.id, 0),
                        iso_utc(reported) if reported else "its first report")  # fmt: skip

    def record(self, info: RunInfo, ended: float) -> None:
        """run.json's account of the workers: the requests each sent, and those lost."""
        info.worker_requests = dict(self.requests)
        self.note_lost(ended)
        info.lost_workers = [self.lost[k] for k in sorted(self.lost)]
