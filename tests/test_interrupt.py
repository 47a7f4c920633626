"""Ctrl-C and SIGTERM mid-run: `status: interrupted`, every closed interval kept and readable."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from analysis.rundir import RunDir


def _start(args: list[str]) -> subprocess.Popen:
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


def _assert_interrupted(run_dir: RunDir) -> None:
    info = run_dir.read_info()
    assert info.status == "interrupted" and info.ended_at
    intervals = run_dir.read_intervals()
    assert len(intervals) >= 2
    assert run_dir.read_summary()["overall"]["requests"] == intervals["requests"].sum() > 0


@pytest.mark.parametrize(("workers", "sig"), [(0, signal.SIGINT), (2, signal.SIGTERM)])
def test_signal_mid_run_leaves_an_interrupted_readable_run(target, tmp_path, workers, sig):
    proc = _start([sys.executable, "-m", "loadwise", "run", "browse", "--host", target.url, "--users", "6",
                   "--spawn-rate", "6", "--duration", "60s", "--interval", "1", "--workers", str(workers),
                   "--out", str(tmp_path)])
    try:
        run_path = _wait_for_intervals(tmp_path)
        os.kill(proc.pid, sig)
        stdout, stderr = proc.communicate(timeout=45)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert stdout.strip().splitlines()[-1] == str(run_path)
    _assert_interrupted(RunDir(run_path))


def test_plain_locust_ctrl_c_is_interrupted_too(target, tmp_path):
    run_path = tmp_path / "plain"
    proc = _start([sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "--only-summary",
                   "--scenario", "smoke", "--shape", "constant", "-u", "3", "-r", "3", "-t", "60s",
                   "--host", target.url, "--run-dir", str(run_path), "--interval", "1"])
    try:
        _wait_for_intervals(tmp_path)
        os.kill(proc.pid, signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    _assert_interrupted(RunDir(run_path))
