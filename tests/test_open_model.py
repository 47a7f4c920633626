"""The open model on real Locust runs against a real (plain asyncio) target on loopback.

The target records when each request arrived; the run directory must agree with it: the
planned rate is what arrives, Poisson gaps are exponential, a stalled target shows in the
intended-start latencies (not in the service times, and far less under a closed model),
dropped iterations are counted exactly, and `--workers 2` splits one plan exactly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from conftest import REPO, run_cli
from loadwise.analysis import histogram
from loadwise.analysis.rundir import RunDir, epoch_of
from loadwise.run.net import free_port
from services import terminate

pytestmark = pytest.mark.slow

LOCUSTFILE = """
from locust import FastHttpUser, constant_pacing, task


class Caller(FastHttpUser):
    wait_time = constant_pacing(0.2)  # a closed model: 20 users ~ 100 requests/s (ignored under a rate shape)

    @task
    def call(self):
        self.client.get("/call")
"""


class Target:
    """tests/asyncio_target.py on a free loopback port: fixed service time, records arrivals."""

    def __init__(self, tmp: Path, service_ms: float):
        self.port = free_port()
        self.times_file = tmp / f"arrivals-{self.port}.txt"
        self.proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "asyncio_target.py"), str(self.port),
                                      str(service_ms), str(self.times_file)])  # fmt: skip
        deadline = time.monotonic() + 10
        import socket

        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arrivals(self) -> np.ndarray:
        """Stop the target; the epoch times at which it received each request."""
        terminate(self.proc)
        return np.array([float(x) for x in self.times_file.read_text().split()])


@pytest.fixture
def locustfile(tmp_path: Path) -> Path:
    path = tmp_path / "caller.py"
    path.write_text(LOCUSTFILE)
    return path


def run(locustfile: Path, target: Target, out: Path, *options: str) -> RunDir:
    result = run_cli("run", str(locustfile), "--host", target.url, "--out", str(out), "--interval", "1", *options, timeout=120)
    assert result.code == 0, result.stderr
    return RunDir(result.last_line)


def run_against(tmp: Path, locustfile: Path, service_ms: float, *options: str) -> tuple[RunDir, np.ndarray]:
    """A run against a fresh target; the run directory and the target's own arrival times."""
    target = Target(tmp, service_ms)
    try:
        run_dir = run(locustfile, target, tmp, *options)
        return run_dir, target.arrivals()
    finally:
        terminate(target.proc)


def values_ms(encoded) -> np.ndarray:
    """Every recorded latency (to HDR precision) of the merged histograms."""
    counts = histogram.merged_counts(encoded)
    index = np.nonzero(counts)[0]
    return np.repeat(histogram.bucket_upper_us(index) / 1000.0, counts[index])


def test_planned_rate_arrives_and_poisson_gaps_are_exponential(tmp_path, locustfile):
    """Poisson arrivals at 40/s for 12 s with a seed: the run schedules exactly the seeded plan, the
    target receives it (within the few requests in flight at the end), and the gaps between the
    target's own arrival times pass a Kolmogorov-Smirnov test against the exponential. 40/s: the
    target sees each arrival ~1 ms after its planned time (pickup, send, read); at 60/s that jitter
    alone moved KS's D to 0.05 (p 0.07), at 80/s past p 0.01."""
    poisson, times = run_against(tmp_path, locustfile, 5, "--shape", "constant-rate", "--rate", "40", "-u", "5", "-t", "12s",
                                 "--arrivals", "poisson", "--arrival-seed", "42")  # fmt: skip
    times = np.sort(times)

    from loadwise.shapes.catalog import build_shape
    from loadwise.shapes.rates import ArrivalOptions

    plan = len(list(build_shape("constant-rate", 5, 12, arrivals=ArrivalOptions(rate=40, arrivals="poisson", seed=42)).arrival_times()))
    info, summary = poisson.read_info(), poisson.read_summary()["overall"]
    assert info.open_model["scheduled"] == plan == summary["iterations_scheduled"]  # the seeded plan, exactly
    assert abs(len(times) - plan) <= 0.01 * plan, (len(times), plan)  # what arrived at the target: within 1 %
    assert summary["requests"] == len(times) and summary["dropped_iterations"] == 0
    assert not info.open_model["generator"]["saturated"]
    gaps = np.diff(times)
    ks = stats.kstest(gaps, "expon", args=(0, 1 / 40))
    print(f"\nPoisson at 40/s: plan {plan}, {len(times)} arrivals at the target, mean gap {gaps.mean() * 1000:.2f} ms, "
          f"KS D={ks.statistic:.4f} p={ks.pvalue:.3f}")
    assert ks.pvalue > 0.01


def _stall(pid: int, out: Path, at_s: float, for_s: float) -> tuple[threading.Thread, dict[str, float]]:
    """SIGSTOP the target `at_s` into the run recorded under `out` (the run's own started_at, read
    once its first interval is on disk: the load is on), SIGCONT it `for_s` later. A wait on the
    run, not on a clock started with the target: on a loaded machine Locust can take seconds to
    start, and a stall timed from the target's start then fell before or across the run's start."""
    when: dict[str, float] = {}

    def pause() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = [csv for csv in out.glob("*/intervals.csv") if len(csv.read_text().splitlines()) >= 2]
            if rows:
                break
            time.sleep(0.05)
        else:
            return  # no run: the test fails on the run's own result
        started = epoch_of(json.loads((rows[0].parent / "run.json").read_text())["started_at"])
        time.sleep(max(started + at_s - time.time(), 0))
        when["stopped"] = time.time()
        os.kill(pid, signal.SIGSTOP)
        time.sleep(for_s)
        os.kill(pid, signal.SIGCONT)
        when["continued"] = time.time()

    thread = threading.Thread(target=pause, daemon=True)
    thread.start()
    return thread, when


def _deciles(values: np.ndarray) -> list[float]:
    return [round(float(np.percentile(values, q)), 1) for q in range(10, 100, 10)]


def test_a_stalled_target_shows_in_intended_start_latency_not_in_service_time(tmp_path, locustfile):
    """SIGSTOP the target for 2 s mid-run. Open model (100/s, a pool of at most 20 users, far too
    few for the 200 arrivals of the stall): the arrivals scheduled during the stall wait, and their
    latencies from the intended start spread evenly over (0, 2 s]; the service times do not show
    the stall; a closed model (20 users pacing at 100/s) against the same stall hides most of it."""
    stall_s, views = 2.0, {}
    for model, options in (("open", ("--shape", "constant-rate", "--rate", "100", "-u", "10", "--max-users", "20")),
                           ("closed", ("--shape", "constant", "-u", "20", "-r", "20"))):  # fmt: skip
        target = Target(tmp_path, service_ms=2)
        out = tmp_path / model
        try:
            pause, when = _stall(target.proc.pid, out, at_s=2.5, for_s=stall_s)
            run_dir = run(locustfile, target, out, *options, "-t", "7s" if model == "open" else "6s")
            pause.join()
        finally:
            os.kill(target.proc.pid, signal.SIGCONT)
            terminate(target.proc)
        info = run_dir.read_info()
        # The whole stall inside the load, or the figures below do not describe a stall.
        assert epoch_of(info.started_at) < when["stopped"] and when["continued"] < epoch_of(info.load_ended_at), (info, when)
        intervals = run_dir.read_intervals()
        views[model] = values_ms(intervals["hdr"])
        if model == "open":
            views["service"] = values_ms(intervals["service_hdr"])

    slow = {name: int((v > 100).sum()) for name, v in views.items()}
    print("\nlatency deciles (ms) and requests slower than 100 ms:")
    for name, v in views.items():
        print(f"  {name:<8} n={len(v):5d} slow={slow[name]:4d} deciles={_deciles(v)}")
    # The stall's arrivals: those slower than 100 ms under the open model, against U(100 ms, 2 s]
    # (below 100 ms they mix with the arrivals just after the stall, which wait while the backlog drains).
    stalled = views["open"][views["open"] > 100]
    expected = np.linspace(100, stall_s * 1000, 11)[1:-1]
    print(f"  stalled  n={len(stalled)} deciles={_deciles(stalled)} uniform={[round(float(x), 1) for x in expected]}")
    assert 150 <= len(stalled) <= 230  # ~190 of the ~200 arrivals in 2 s at 100/s
    assert np.all(np.abs(np.array(_deciles(stalled)) - expected) <= 0.05 * stall_s * 1000)
    assert slow["service"] <= 25  # only the requests caught in flight (one per busy user)
    assert slow["closed"] * 4 < slow["open"]


def test_dropped_iterations_are_counted_exactly(tmp_path, locustfile):
    """A pool of 2 users and a 0.2 s lateness bound against 50 ms per request at 100/s: most
    arrivals cannot start in time; scheduled = started + dropped, and started is what arrived."""
    run_dir, arrived = run_against(tmp_path, locustfile, 50, "--shape", "constant-rate", "--rate", "100", "-u", "2",
                                   "--max-users", "2", "--max-lateness", "0.2s", "-t", "4s")  # fmt: skip
    seen = len(arrived)
    counts = run_dir.read_info().open_model
    summary = run_dir.read_summary()["overall"]
    print(f"\n{counts}")
    assert counts["scheduled"] == 400 == counts["started"] + counts["dropped"]
    assert counts["dropped"] > 200 and counts["late"] > 0
    assert 0 <= seen - summary["requests"] <= 2  # the target saw what was recorded, plus at most the pool in flight
    assert counts["started"] - summary["requests"] in (0, 1, 2)
    iterations = run_dir.read_iterations()
    assert int(iterations["scheduled"].sum()) == 400 and int(iterations["dropped"].sum()) == counts["dropped"]


def test_workers_split_the_plan_exactly(tmp_path, locustfile):
    run_dir, arrived = run_against(tmp_path, locustfile, 5, "--shape", "step-rate", "--rate", "200", "--shape-param", "steps=2",
                                   "-u", "4", "-t", "4s", "--workers", "2")  # fmt: skip
    seen = len(arrived)
    info = run_dir.read_info()
    summary = run_dir.read_summary()["overall"]
    print(f"\n{info.open_model} worker requests {info.worker_requests} target {seen}")
    assert info.open_model["scheduled"] == info.open_model["planned"] == 600  # 100/s for 2 s, then 200/s for 2 s
    assert len(info.worker_requests) == 2 and min(info.worker_requests.values()) >= 267  # each near half (400 of 900 before: the same share)
    assert 0 <= seen - summary["requests"] <= 4 and info.open_model["dropped"] <= 4
    assert summary["iterations_started"] + summary["dropped_iterations"] == 600
    assert json.loads((run_dir.path / "run.json").read_text())["shape"] == "step-rate"


BURNER = (LOCUSTFILE + """
    @task
    def burn(self):
        end = time.perf_counter() + 0.025
        while time.perf_counter() < end:  # the generator's own CPU, no gevent switch
            pass
""").replace("from locust import", "import time\nfrom locust import")


def test_a_saturated_generator_is_said_out_loud(tmp_path):
    """Half the iterations burn 25 ms of the generator's own CPU, at 100/s: one Locust process
    cannot keep the schedule. run.json and the live line say the generator, not the target,
    was the limit."""
    path = tmp_path / "burner.py"
    path.write_text(BURNER)
    target = Target(tmp_path, service_ms=1)
    try:
        result = run_cli("run", str(path), "--host", target.url, "--out", str(tmp_path), "--shape", "constant-rate",
                         "--rate", "100", "-u", "5", "-t", "4s", timeout=120)  # fmt: skip
    finally:
        terminate(target.proc)
    assert result.code == 0, result.stderr
    generator = RunDir(result.last_line).read_info().open_model["generator"]
    print(f"\n{generator}")
    assert generator["saturated"] and generator["late_share"] > 0.1
    assert "the load generator was saturated" in result.stderr and "iterations: 400 scheduled" in result.stdout
