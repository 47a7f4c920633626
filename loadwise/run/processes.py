"""The Locust processes `loadwise run` starts: starting them, relaying their output, stopping
them (by PID, only those it started), and what Ctrl-C and SIGTERM do meanwhile."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from loadwise.engine.stream import RUN_DIR_PREFIX, Status
from loadwise.run.live import LiveDisplay
from loadwise.run.runlog import RunLog

STOP_GRACE_S = 30.0  # after SIGTERM, how long Locust gets to write its last intervals
EXIT_WAIT_S = 10.0  # once the main process exited: how long its workers get to follow
RELAY_JOIN_S = 5.0


class Processes:
    """The Locust processes of one run, each in its own process group so a terminal's Ctrl-C
    reaches only `loadwise run`, which then stops them in order. A process group, not a new
    session: Linux schedules each session as its own group (autogroup), which gave every
    worker a share of the CPU equal to the whole target's on a shared machine (`--workers 2`
    ran at 0.88x of `locust --processes 2`, whose workers stay in the caller's session)."""

    def __init__(self, log_path: Path):
        self.log = RunLog(log_path)
        self.relays: list[threading.Thread] = []
        self.main: subprocess.Popen[str] | None = None
        self.main_relay: threading.Thread | None = None
        self.workers: list[subprocess.Popen[str]] = []
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def start_main(self, args: list[str], display: LiveDisplay | None, run_dirs: list[Path] | None = None) -> subprocess.Popen[str]:
        """The local runner or the master; its status stream goes to `display`, the run
        directories it announces (the web UI's tests) into `run_dirs`."""
        self.main = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            process_group=0, env=self.env,
        )  # fmt: skip
        self.main_relay = threading.Thread(target=_relay, args=(self.main.stdout, self.log, display, run_dirs), daemon=True)
        self.main_relay.start()
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

    def kill(self) -> None:
        for proc in self.all():
            self.signal(proc, signal.SIGKILL)

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

    def supervise(self, interrupts: Interrupts, deadline: float) -> None:
        """Until the main process exits: stopped like a Ctrl-C would when asked to or when it
        overran `deadline` (time.monotonic)."""
        assert self.main is not None
        while self.main.poll() is None:
            if interrupts.stop_requested.is_set() or time.monotonic() > deadline:
                interrupts.stop_requested.clear()
                if not interrupts.interrupted.is_set():
                    interrupts.interrupted.set()  # overran its time: stop it like a Ctrl-C would
                self.stop(STOP_GRACE_S)
            time.sleep(0.1)
        self.wait_all(EXIT_WAIT_S)
        self.join_main_relay()

    def join_main_relay(self) -> None:
        """The main process's last lines (it has exited) are relayed before the run is finished."""
        if self.main_relay is not None:
            self.main_relay.join(timeout=RELAY_JOIN_S)

    def close(self) -> None:
        for relay in self.relays:
            relay.join(timeout=RELAY_JOIN_S)
        self.log.close()


class Interrupts:
    """Ctrl-C and SIGTERM to `loadwise run` while its processes run, from creation to `restore`:
    the first asks for a stop (the run loop stops the processes politely), the second kills them."""

    def __init__(self, procs: Processes):
        self.procs = procs
        self.interrupted = threading.Event()  # the run was stopped before its end (a signal, or its deadline)
        self.stop_requested = threading.Event()  # a signal asked for a stop the run loop has not made yet
        self.previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.interrupted.is_set():  # second Ctrl-C: stop waiting politely
            self.procs.kill()
            return
        self.interrupted.set()
        self.stop_requested.set()

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _relay(stream: Any, log: RunLog, display: LiveDisplay | None, run_dirs: list[Path] | None = None) -> None:
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


def last_error(log_path: Path) -> str:
    """The last line of a Locust log that names an error (else its last line), to say why it exited."""
    try:
        lines = [ln.strip() for ln in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    for line in reversed(lines):
        if "error" in line.lower() or "Error" in line:
            return line
    return lines[-1] if lines else "no output"
