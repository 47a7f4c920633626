"""Ctrl-C and SIGTERM mid-run: `status: interrupted`, every closed interval kept and readable."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, served_requests

from loadwise.analysis.rundir import RunDir, epoch_of

pytestmark = pytest.mark.slow  # every test here runs real load


def _start(args: list[str]) -> subprocess.Popen:
    """A process whose output is read at its end. The `loadwise run`s here pass --no-report, as
    conftest.run_cli does: the report (~2 s a run) is not what these tests read."""
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_for_intervals(runs: Path, timeout_s: float = 40) -> Path:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for csv in runs.glob("*/intervals.csv"):
            if len(csv.read_text().splitlines()) >= 3:
                return csv.parent
        time.sleep(0.3)
    raise AssertionError("no interval was written")


def _wait_for_load(runs: Path, target, before: int, seconds: float, timeout_s: float = 60) -> Path:
    """The run directory under `runs` once its load has been on for `seconds`: the target has
    served requests (so the test has started and run.json's started_at is the load's start,
    not the moment the run directory was opened) and `seconds` have passed since. A condition,
    not a count of flushed intervals: a master keeps its intervals open 7 s (MASTER_GRACE_S)
    and a loaded machine starts the workers late."""
    deadline = time.monotonic() + timeout_s
    while served_requests(target) <= before:
        if time.monotonic() > deadline:
            raise AssertionError("the run sent no request")
        time.sleep(0.2)
    (run_json,) = runs.glob("*/run.json")
    started = epoch_of(json.loads(run_json.read_text())["started_at"])
    time.sleep(max(started + seconds - time.time(), 0))
    return run_json.parent


def _assert_interrupted(run_dir: RunDir) -> None:
    info = run_dir.read_info()
    assert info.status == "interrupted" and info.ended_at
    assert info.status_reason == "stopped before the planned end"  # finalized by Locust itself, not repaired
    intervals = run_dir.read_intervals()
    assert len(intervals) >= 2
    assert run_dir.read_summary()["overall"]["requests"] == intervals["requests"].sum() > 0


@pytest.mark.parametrize(("workers", "sig"), [(0, signal.SIGINT), (2, signal.SIGTERM)])
def test_signal_mid_run_leaves_an_interrupted_readable_run(target, tmp_path, workers, sig):
    before = served_requests(target)
    proc = _start([sys.executable, "-m", "loadwise", "run", "browse", "--host", target.url, "--users", "6",
                   "--spawn-rate", "6", "--duration", "60s", "--interval", "1", "--workers", str(workers),
                   "--out", str(tmp_path), "--no-report"])
    try:
        # 2.5 s: two whole intervals and half the next, between two of the recorder's once-a-second
        # flushes (as the old wait for two flushed rows was, just after one).
        run_path = _wait_for_load(tmp_path, target, before, 2.5)
        os.kill(proc.pid, sig)
        stdout, stderr = proc.communicate(timeout=45)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert stdout.strip().splitlines()[-1] == str(run_path)
    _assert_interrupted(RunDir(run_path))
    recorded = RunDir(run_path).read_intervals()["requests"].sum()
    assert 0 <= served_requests(target) - before - recorded <= 6  # nothing lost but requests in flight


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_plain_locust_ctrl_c_or_sigterm_is_interrupted_too(target, tmp_path, sig):
    run_path = tmp_path / "plain"
    proc = _start([sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "--only-summary",
                   "--scenario", "smoke", "--shape", "constant", "-u", "3", "-r", "3", "-t", "60s",
                   "--host", target.url, "--run-dir", str(run_path), "--interval", "1"])
    try:
        _wait_for_intervals(tmp_path)
        os.kill(proc.pid, sig)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    _assert_interrupted(RunDir(run_path))


def _children(pid: int) -> dict[str, list[int]]:
    """The Locust processes `loadwise run` started, by role."""
    roles: dict[str, list[int]] = {"master": [], "worker": [], "local": []}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        role = "worker" if b"--worker" in cmdline else "master" if b"--master" in cmdline else "local"
        roles[role].append(int(child))
    return roles


def test_killed_worker_leaves_a_completed_run_with_the_other_worker_going(target, tmp_path):
    """A worker SIGKILLed 4.5 s into a 13 s run: by then it has sent the master at least one report
    with requests (workers report every 3 s), Locust notices it missing ~3 s later, and the other
    worker's requests fill the run's last ~3.5 s (after killed_at + 5)."""
    before = served_requests(target)
    proc = _start([sys.executable, "-m", "loadwise", "run", "browse", "--host", target.url, "--users", "6",
                   "--spawn-rate", "6", "--duration", "13s", "--interval", "1", "--workers", "2",
                   "--out", str(tmp_path), "--no-report"])
    try:
        run_path = _wait_for_load(tmp_path, target, before, 4.5)
        killed_at = time.time()
        os.kill(_children(proc.pid)["worker"][0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    run_dir = RunDir(run_path)
    assert run_dir.read_info().status == "completed"
    intervals = run_dir.read_intervals()
    after = intervals[intervals["start"].map(lambda t: t.timestamp()) > killed_at + 5]
    assert after["requests"].sum() > 0  # the surviving worker carried on
    info = run_dir.read_info()
    assert len(info.worker_requests) == 2
    assert len(info.lost_workers) == 1 and info.lost_workers[0]["id"] in info.worker_requests  # named, not silent
    assert f"worker lost: {info.lost_workers[0]['id']}" in stdout


def test_killed_load_generator_is_a_failed_run_that_keeps_what_was_recorded(target, tmp_path):
    proc = _start([sys.executable, "-m", "loadwise", "run", "browse", "--host", target.url, "--users", "4",
                   "--spawn-rate", "4", "--duration", "60s", "--interval", "1", "--out", str(tmp_path), "--no-report"])
    try:
        run_path = _wait_for_intervals(tmp_path)
        os.kill(_children(proc.pid)["local"][0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1 and "Traceback" not in stderr
    assert stdout.strip().splitlines()[-1] == str(run_path)
    run_dir = RunDir(run_path)
    info = run_dir.read_info()
    assert info.status == "failed" and "exited with code -9" in info.status_reason
    assert run_dir.read_summary()["overall"]["requests"] == run_dir.read_intervals()["requests"].sum() > 0
