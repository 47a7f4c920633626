"""Ctrl-C reaches the run whichever greenlet holds the event loop when it comes.

Left to Python, SIGINT raises KeyboardInterrupt in whatever code runs at that moment: Locust's
stats-history greenlet catches it and goes on (the run then ran to its planned end and said
"completed"), and a flush caught between taking closed intervals and writing them lost them.
The locustfile below holds the loop with code that swallows KeyboardInterrupt, as that greenlet
does: without loadwise's own SIGINT handling this run ends "completed" after its 8 s (checked
by hand), with it "interrupted" at once, every request recorded. Bounded: 2 users, 0.05 s waits,
at most 8 s, one loopback server.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO
from loopback_http import serve

from loadwise.analysis.rundir import RunDir

LOCUSTFILE = '''
import time

import gevent
from locust import HttpUser, constant, events, task


def _swallow_interrupts():
    end = time.time() + 3.0
    while time.time() < end:
        try:
            busy = time.time() + 0.2
            while time.time() < busy:  # holds the event loop: a Python-level SIGINT lands here
                pass
        except KeyboardInterrupt:
            pass
        gevent.sleep(0.01)


@events.test_start.add_listener
def _(**_kw):
    gevent.spawn(_swallow_interrupts)


class Reader(HttpUser):
    wait_time = constant(0.05)

    @task
    def read(self):
        self.client.get("/read")
'''


def _count(server) -> bytes:
    with server.lock:
        server.served += 1
    return b"ok"


@pytest.mark.slow
def test_ctrl_c_interrupts_the_run_even_when_a_greenlet_swallows_keyboard_interrupt(tmp_path):
    (tmp_path / "swallow.py").write_text(LOCUSTFILE)
    with serve(_count, served=0) as server:
        proc = subprocess.Popen([sys.executable, "-m", "locust", "-f", "loadwise/engine/locustfile.py", "--scenario",
                                 str(tmp_path / "swallow.py"), "--shape", "constant", "-u", "2", "-t", "8s", "--headless",
                                 "--host", server.url, "--run-dir", str(tmp_path / "run"), "--interval", "1", "--only-summary"],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while server.served == 0 and time.monotonic() < deadline:  # the load (and the swallowing greenlet) runs
                time.sleep(0.05)
            time.sleep(0.5)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=30)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
        served = server.served
    run = RunDir(tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "interrupted", output[-2000:]
    assert took < 5.0, took  # not the 7 s left of the planned run
    assert int(run.read_intervals()["requests"].sum()) == served  # every request the server saw is in the run
