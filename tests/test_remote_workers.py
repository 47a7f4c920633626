"""Remote workers on hosts of their own: a master and two workers in separate network namespaces.

The master's host (with the nginx target) and each worker's host are network namespaces joined
by veth links, with loopback-range addresses (tests/netns.py). Between master and workers: 20 ms
of delay, with tc netem where the kernel has it, else a delaying relay on the master's port
(tests/delay_relay.py; this machine's kernel is built without netem). `loadwise worker` joins as
on another machine, with Locust's own options passed through. Needs root: skipped with the reason
otherwise, a failure under CI=true.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO
from netns import MASTER_IP, Hosts, available
from services import Nginx, terminate

from loadwise.analysis import histogram
from loadwise.analysis.rundir import RunDir, epoch_of
from loadwise.run.net import free_port

pytestmark = pytest.mark.slow

LOCUSTFILE = """
from locust import FastHttpUser, constant_throughput, task


class Shopper(FastHttpUser):
    wait_time = constant_throughput(15)

    @task(3)
    def browse(self):
        self.client.get("/browse")

    @task(1)
    def basket(self):
        self.client.get("/basket")
"""
USERS = 4
DELAY_MS = 20


@pytest.fixture
def hosts():
    reason = available()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"remote-worker test cannot run: {reason}")
        pytest.skip(reason)
    with Hosts(workers=2) as made:
        yield made


class Distributed:
    """nginx and a `loadwise run --expect-workers 2` master on the master's host, a `loadwise worker`
    on each worker host, the master's port behind DELAY_MS of latency."""

    def __init__(self, hosts: Hosts, tmp_path: Path, seconds: int):
        self.hosts, self.tmp, self.seconds = hosts, tmp_path, seconds
        self.locustfile = tmp_path / "shop.py"
        self.locustfile.write_text(LOCUSTFILE)
        self.nginx = Nginx(host=MASTER_IP, netns=hosts.master)
        self.procs: list[subprocess.Popen[str]] = []  # every process started here, stopped by PID at the end

    def __enter__(self) -> Distributed:
        self.nginx.start()
        master_port = free_port()
        if self.hosts.delay(DELAY_MS):
            listen, worker_port, self.delay = MASTER_IP, master_port, "tc netem"
        else:
            listen, worker_port, self.delay = "127.0.0.1", free_port(), "relay"
            self._start(self.hosts.master, [str(REPO / "tests" / "delay_relay.py"), MASTER_IP, str(worker_port),
                                            "127.0.0.1", str(master_port), str(DELAY_MS)])  # fmt: skip
        self.master = self._start(self.hosts.master, [
            "-m", "loadwise", "run", str(self.locustfile), "--host", self.nginx.url, "--expect-workers", "2",
            "--listen", listen, "--master-port", str(master_port), "-u", str(USERS), "-r", str(USERS),
            "-t", f"{self.seconds}s", "--interval", "1", "--out", str(self.tmp), "--no-report"])  # fmt: skip
        for ns in self.hosts.workers:  # Locust's --stop-timeout passes through to the worker
            self._start(ns, ["-m", "loadwise", "worker", str(self.locustfile), "--master-host", MASTER_IP,
                             "--master-port", str(worker_port), "--interval", "1", "--stop-timeout", "0"])  # fmt: skip
        return self

    def _start(self, ns: str, args: list[str]) -> subprocess.Popen[str]:
        proc = subprocess.Popen(self.hosts.command(ns, [sys.executable, *args]), cwd=REPO, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
        self.procs.append(proc)
        return proc

    def wait(self) -> tuple[int, str, str]:
        """The master's exit code and output; `served` then holds the target's own counts."""
        out, err = self.master.communicate(timeout=self.seconds + 120)
        self.served = self.nginx.served()
        return self.master.returncode, out, err

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            terminate(proc, timeout_s=10)
        self.nginx.stop()


def _percentiles_from_merge(intervals: pd.DataFrame) -> list[float]:
    merged = histogram.merge(intervals["hdr"])
    return [histogram.percentile_ms(merged, q) for q in (50, 95, 99)]


def test_remote_workers_count_what_the_target_served_and_merge_exactly(hosts, tmp_path):
    with Distributed(hosts, tmp_path, seconds=4) as run:
        code, out, err = run.wait()
    assert code == 0, err[-3000:]
    run_dir = RunDir(out.strip().splitlines()[-1])
    info, intervals, summary = run_dir.read_info(), run_dir.read_intervals(), run_dir.read_summary()
    assert info.status == "completed" and info.workers == 2 and not info.lost_workers
    assert len(info.worker_requests) == 2 and all(n > 20 for n in info.worker_requests.values()), info.worker_requests
    served = run.served
    recorded = {("GET", name): int(rows["requests"].sum()) for name, rows in intervals.groupby("name")}
    assert set(recorded) == {("GET", "/browse"), ("GET", "/basket")}
    for endpoint, count in recorded.items():  # the target's own count: exact, or a request in flight per user at stop
        assert 0 <= served[endpoint] - count <= USERS, (endpoint, served[endpoint], count)
    assert sum(info.worker_requests.values()) == sum(recorded.values())
    # Percentiles merged from both workers' histograms, exactly: the summary is the merge of every row.
    overall = summary["overall"]
    assert [overall["p50_ms"], overall["p95_ms"], overall["p99_ms"]] == pytest.approx(_percentiles_from_merge(intervals), abs=1e-3)
    for endpoint in summary["endpoints"]:
        rows = intervals[intervals["name"] == endpoint["name"]]
        assert histogram.merge(rows["hdr"]).get_total_count() == endpoint["requests"]
        assert endpoint["p95_ms"] == pytest.approx(_percentiles_from_merge(rows)[1], abs=1e-3)
    if run.delay == "tc netem":  # the load crosses the delayed link too
        assert intervals["p50_ms"].min() >= DELAY_MS
    # The master's wait for its delayed workers is not load: the duration is the shape's.
    assert abs(summary["duration_s"] - 4.0) <= 0.3, summary["duration_s"]


def test_a_worker_cut_off_mid_run_is_reported_lost_and_its_intervals_kept(hosts, tmp_path):
    # Cut 6 s into the load (after at least one report of each worker's full load), noticed ~4 s later
    # (Locust's heartbeat): 15 s leaves 2-3 whole seconds of the survivor alone before the last one.
    seconds = 15
    with Distributed(hosts, tmp_path, seconds=seconds) as run:
        # The load has started once nginx has served a request; only then is run.json's started_at
        # the test's start. (The master writes started_at when it opens the run directory too, before
        # its workers have joined: on a loaded machine seconds earlier, which put the cut at the end
        # of the ramp-up and the first, partial second among those "before" it.)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (run.nginx.access_log.exists() and run.nginx.access_log.stat().st_size):
            time.sleep(0.1)
        run_dirs: list[Path] = [p.parent for p in tmp_path.glob("*/run.json")]
        assert run_dirs and run.nginx.access_log.stat().st_size, "the run did not start"
        started = epoch_of(json.loads((run_dirs[0] / "run.json").read_text())["started_at"])
        time.sleep(max(started + 6 - time.time(), 0))
        cut_at = time.time()
        hosts.cut(hosts.workers[1])
        code, out, err = run.wait()
    assert code == 0, err[-3000:]
    run_dir = RunDir(out.strip().splitlines()[-1])
    info, intervals = run_dir.read_info(), run_dir.read_intervals()
    assert info.status == "completed", info.status_reason
    assert len(info.lost_workers) == 1, info.lost_workers
    lost = info.lost_workers[0]
    assert lost["id"] in info.worker_requests and info.worker_requests[lost["id"]] == lost["requests"] > 20
    assert cut_at < epoch_of(lost["lost_at"]) < cut_at + 8  # Locust's heartbeat: missing after ~3 s
    assert epoch_of(lost["last_report_at"]) <= cut_at + 0.5
    assert f"worker lost: {lost['id']}" in out
    recorded = int(intervals["requests"].sum())
    assert recorded == sum(info.worker_requests.values())
    assert 0 <= sum(run.served.values()) - recorded <= 15 * (USERS // 2) * 4  # what it sent after its last report
    # Before the cut both workers' requests are in the intervals, after the loss only the survivor's.
    per_second = intervals.groupby("start")["requests"].sum()
    seconds_at = [t.timestamp() for t in per_second.index]
    before = [n for t, n in zip(seconds_at, per_second) if started + 1 <= t and t + 1 <= epoch_of(lost["last_report_at"])]
    after = [n for t, n in zip(seconds_at, per_second) if epoch_of(lost["lost_at"]) + 1 <= t < started + seconds - 1]
    assert before and after, (before, after, {"started": started, "cut_at": cut_at, **lost})
    assert sum(before) / len(before) > 1.6 * sum(after) / len(after), (before, after)
