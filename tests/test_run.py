"""`loadwise run` end to end: real Locust processes against the real demo shop."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, run_cli, served_requests

from loadwise.analysis import histogram
from loadwise.analysis.rundir import RunDir
from loadwise.run.handoff import DONE_FILE, FETCHED_FILE
from loadwise.run.net import free_port

pytestmark = pytest.mark.slow  # every test here runs real load


def _check_complete_run_dir(path: Path) -> tuple[dict, pd.DataFrame, dict]:
    assert {"run.json", "intervals.csv", "summary.json", "locust.log"} <= {p.name for p in path.iterdir()}
    info = json.loads((path / "run.json").read_text())
    intervals = pd.read_csv(path / "intervals.csv")  # one pandas call, as DESIGN.md promises
    summary = json.loads((path / "summary.json").read_text())
    assert info["status"] == "completed" and info["started_at"] < info["ended_at"]
    assert info["id"] == path.name and path.name.endswith("-browse")
    assert summary["overall"]["requests"] == intervals["requests"].sum()
    assert not intervals.duplicated(["start", "method", "name"]).any()
    merged = histogram.merge(intervals["hdr"])
    assert merged.get_total_count() == intervals["requests"].sum()
    names = set(intervals["name"])
    assert "/products/[id]" in names and not any(n.startswith("/products/1") for n in names)  # grouped names
    return info, intervals, summary


def test_local_run_counts_every_request_the_server_served(target, tmp_path):
    before = served_requests(target)
    result = run_cli("run", "browse", "--host", target.url, "--users", "8", "--duration", "6s",
                     "--interval", "1", "--out", str(tmp_path), "--tag", "team=shop")
    assert result.code == 0, result.stderr
    path = Path(result.last_line)
    assert path.parent == tmp_path
    info, intervals, summary = _check_complete_run_dir(path)
    assert info["shape"] == "constant" and info["tags"] == {"team": "shop"} and info["workers"] == 0
    served = served_requests(target) - before
    recorded = int(intervals["requests"].sum())
    assert recorded > 20
    assert 0 <= served - recorded <= 8, (served, recorded)  # at most one in flight per user at stop
    assert "GET /products/[id]" in result.stdout  # the per-endpoint table
    _check_duration(info, summary, 6.0)


def _check_duration(info: dict, summary: dict, planned_s: float) -> None:
    """The duration is the load's (first user to the stop), and every rate is over it: not the
    master's wait for its workers' last reports, nor a shape tick's second of lag."""
    assert abs(summary["duration_s"] - planned_s) <= 0.2, (summary["duration_s"], info["started_at"], info["load_ended_at"])
    assert info["load_ended_at"] <= info["ended_at"]
    overall = summary["overall"]
    assert overall["rps"] == pytest.approx(overall["requests"] / summary["duration_s"], rel=1e-3)
    for endpoint in summary["endpoints"]:
        assert endpoint["rps"] == pytest.approx(endpoint["requests"] / summary["duration_s"], rel=1e-3, abs=1e-3)


def test_distributed_run_merges_worker_histograms(target, tmp_path):
    before = served_requests(target)
    csv = tmp_path / "csv" / "locust"
    result = run_cli("run", "browse", "--host", target.url, "--workers", "2", "--users", "10",
                     "--duration", "6s", "--shape", "step", "--shape-param", "steps=2", "--interval", "1",
                     "--out", str(tmp_path), "--csv", str(csv))
    assert result.code == 0, result.stderr + result.stdout
    info, intervals, summary = _check_complete_run_dir(Path(result.last_line))
    assert info["workers"] == 2 and info["shape"] == "step" and info["shape_params"]["steps"] == 2
    sent = info["worker_requests"]
    assert len(sent) == 2 and all(n > 0 for n in sent.values()), sent
    recorded = int(intervals["requests"].sum())
    assert sum(sent.values()) == recorded == histogram.merge(intervals["hdr"]).get_total_count()
    served = served_requests(target) - before
    assert 0 <= served - recorded <= 10, (served, recorded)
    assert intervals["users"].max() == 10
    _check_duration(info, summary, 6.0)
    # Locust's CSV files are the master's alone (as with `locust --processes 2`): one row a second
    # of the whole run, its total count never going back; workers writing too would interleave theirs.
    history = pd.read_csv(f"{csv}_stats_history.csv")
    aggregated = history[history["Name"] == "Aggregated"]
    assert len(aggregated) >= 4 and aggregated["Timestamp"].is_unique
    assert aggregated["Total Request Count"].is_monotonic_increasing
    assert aggregated["User Count"].max() == 10
    stats = pd.read_csv(f"{csv}_stats.csv")
    total = int(stats.loc[stats["Name"] == "Aggregated", "Request Count"].iloc[0])
    assert 0.97 * recorded <= total <= recorded  # Locust's last second may be missing (NOTES.md), never extra


def test_own_locustfile_gets_the_recorder(target, tmp_path):
    locustfile = tmp_path / "mine.py"
    locustfile.write_text(
        "from locust import FastHttpUser, constant, task\n\n"
        "class Mine(FastHttpUser):\n"
        "    wait_time = constant(0.1)\n\n"
        "    @task\n"
        "    def ping(self):\n"
        "        self.client.get('/health', name='health check')\n"
    )
    result = run_cli("run", str(locustfile), "--host", target.url, "--users", "2", "--duration", "3s", "--out", str(tmp_path))
    assert result.code == 0, result.stderr
    run_dir = RunDir(result.last_line)
    assert run_dir.path.name.endswith("-mine")
    assert set(run_dir.read_intervals()["name"]) == {"health check"}
    assert run_dir.read_summary()["overall"]["failures"] == 0


def test_checkout_writes_orders_and_json_output(target, tmp_path):
    result = run_cli("run", "checkout", "--host", target.url, "--users", "3", "--spawn-rate", "3",
                     "--duration", "4s", "--out", str(tmp_path), "--json")
    assert result.code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["status"] == "completed" and Path(out["run_dir"]).is_dir()
    by_name = {(e["method"], e["name"]): e for e in out["endpoints"]}
    assert by_name[("POST", "/orders")]["requests"] > 0 and by_name[("POST", "/orders")]["failures"] == 0
    assert ("GET", "/customers/[id]/orders") in by_name


# What the Helm chart's master Job and worker Deployment run, here on loopback.
def _popen_cli(*args):
    return subprocess.Popen([sys.executable, "-m", "loadwise", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_a_master_with_a_separate_worker_holds_its_run_until_fetched(target, tmp_path):
    port = free_port()
    master = _popen_cli("run", "smoke", "--host", target.url, "--users", "4", "--duration", "4s", "--interval", "1",
                  "--expect-workers", "1", "--master-port", str(port), "--out", str(tmp_path), "--hold", "60s")  # fmt: skip
    worker = _popen_cli("worker", "smoke", "--master-host", "127.0.0.1", "--master-port", str(port), "--interval", "1")
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / DONE_FILE).exists() and time.monotonic() < deadline and master.poll() is None:
            time.sleep(0.2)
        done = json.loads((tmp_path / DONE_FILE).read_text())
        assert done["status"] == "completed" and done["exit_code"] == 0
        time.sleep(1.5)
        assert master.poll() is None  # held for the fetch
        (tmp_path / FETCHED_FILE).touch()
        out, err = master.communicate(timeout=30)
        assert master.returncode == 0, err
        assert worker.wait(timeout=30) == 0
    finally:
        for proc in (master, worker):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    run = RunDir(tmp_path / done["run"])
    assert out.strip().splitlines()[-1] == str(run.path)  # still the run directory, as without --hold
    assert f'loadwise: run finished {{"run": "{done["run"]}"' in err
    info, summary = run.read_info(), run.read_summary()
    assert info.status == "completed" and info.workers == 1
    assert summary["overall"]["requests"] > 0 and summary["overall"]["failures"] == 0
