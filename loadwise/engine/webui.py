"""Locust's web UI (no --headless): every test started there is its own run directory.

The web UI starts and stops tests, one after another, in a process that lives on: a test's
start opens a new run directory, its stop finishes it (on a master once the workers' last
reports are in), and a start whose host is not allowed is refused before any user runs.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent
from locust import events

from loadwise.analysis.rundir import new_run_path
from loadwise.config import ConfigError, check_host_allowed

if TYPE_CHECKING:
    from loadwise.engine.plugin import Session

log = logging.getLogger("loadwise")


class WebUITests:
    """The tests of one web UI session."""

    def __init__(self, session: Session):
        self.session = session
        self.stopped_at: float | None = None  # the running test's Stop: the master waits for its workers' last reports
        self.ending: gevent.Greenlet | None = None  # the greenlet finishing a stopped test's run directory (master)

    def listen(self) -> None:
        s = self.session
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        if s.env.web_ui is not None:
            s.env.web_ui.app.before_request(self.check_swarm)
        log.info("loadwise: each test started from the web UI is recorded in its own run directory under %s",
                 s.opts.run_dir or s.opts.runs_dir)  # fmt: skip

    def check_swarm(self) -> Any:
        """Refuse a start from the web UI whose host is not allowed, before any user runs."""
        from flask import jsonify, request

        if request.method != "POST" or request.path != "/swarm":
            return None
        s = self.session
        host = request.form.get("host") or s.env.host
        try:
            hosts = [host] if host else s.find_hosts(required=True)
            for each in hosts:
                check_host_allowed(each, s.allowed)
        except ConfigError as exc:
            return jsonify({"success": False, "message": f"loadwise: {exc}", "host": s.env.host})
        return None

    def on_test_start(self, **_: Any) -> None:
        s = self.session
        if self.ending is not None:
            self.ending.join()  # the previous test's directory is closed first
        s.hosts = s.find_hosts(required=False)
        s.new_run()
        self.stopped_at = None
        base = Path(s.opts.run_dir).parent if s.opts.run_dir else Path(s.opts.runs_dir)
        s.open_run(new_run_path(base, s.opts.scenario))
        s.test_started = time.time()
        s.on_test_start()

    def on_test_stop(self, **_: Any) -> None:
        s = self.session
        if s.run_dir is None or self.stopped_at is not None:
            return
        self.stopped_at = time.time()
        if s.master is not None:  # workers send their last histograms with their next report (every 3 s)
            s.master.since_stop = set()
            self.ending = gevent.spawn(self._end_test_after_reports)
        else:
            self.end_test()

    def _end_test_after_reports(self) -> None:
        master = self.session.master
        assert master is not None and master.since_stop is not None
        master.wait_for(master.since_stop)
        self.end_test()

    def end_test(self) -> None:
        """Finish the current test's run directory (its status: loadwise.engine.status)."""
        s = self.session
        if s.run_dir is None:
            return
        if s.open_model is not None:
            s.open_model.arrivals.stop()
        s.flush(before=math.inf)
        s.finish()
        s.announce("finished")
        s.run_dir, self.ending = None, None

    def close(self) -> None:
        """Locust quits: the test still running (or being finished) ends here."""
        if self.ending is not None:
            self.ending.join()
        self.end_test()
