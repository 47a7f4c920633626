"""loadwise.check(): named response assertions counted per endpoint without failing the request,
locally and from workers, in run.json, summary.json and thresholds (`checks>99%`). Real Locust
runs against a loopback server that says in each body whether it should pass."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli
from loopback_http import serve

from loadwise.analysis.rundir import RunDir, RunInfo
from loadwise.analysis.summary import summarize
from loadwise.analysis.thresholds import evaluate, parse
from loadwise.engine.checks import MAX_CHECKS, OTHER, CheckCounts

USER = """
from locust import HttpUser, constant, task
from loadwise import check

class Checker(HttpUser):
    wait_time = constant(0.01)

    @task
    def item(self):
        response = self.client.get("/item")
        check(response, {"status is 200": lambda r: r.status_code == 200,
                         "body says pass": lambda r: r.text == "pass",
                         "raises": lambda r: 1 / 0})
"""


def test_counts_merge_drain_and_stay_bounded():
    worker, master = CheckCounts(), CheckCounts()
    worker.add(("GET", "/a", "ok"), True)
    worker.add(("GET", "/a", "ok"), False)
    master.absorb(worker.drain())
    master.absorb([["GET", "/a", "ok", 3, 0]])
    assert worker.counts == {} and master.records() == [{"method": "GET", "name": "/a", "check": "ok", "passes": 4, "fails": 1}]
    for i in range(MAX_CHECKS + 5):
        master.add(("GET", f"/n/{i}", "ok"), True)
    assert len(master.counts) == MAX_CHECKS + 1 and master.counts[("", OTHER, OTHER)] == [6, 0]


def test_checks_in_the_summary_and_in_thresholds():
    import pandas as pd

    info = RunInfo("r", "s", "h", checks=[{"method": "GET", "name": "/a", "check": "ok", "passes": 99, "fails": 1},
                                          {"method": "GET", "name": "/b", "check": "ok", "passes": 50, "fails": 50}])  # fmt: skip
    summary = summarize(info, pd.DataFrame())
    assert (summary.overall.checks_passed, summary.overall.checks_failed) == (149, 51)
    overall, = evaluate([parse("checks>99%")], summary)
    assert not overall.passed and "checks 74.50% (limit > 99.00%) FAILED" in overall.describe()
    assert "checks" not in summarize(RunInfo("r", "s", "h"), pd.DataFrame()).to_dict()["overall"]


def _alternating(server) -> bytes:
    """Every third body says "fail"; the server counts what it sent."""
    with server.lock:
        server.sent += 1
        fail = server.sent % 3 == 0
        server.fails += fail
    return b"fail" if fail else b"pass"


@pytest.fixture
def alternating():
    with serve(_alternating, sent=0, fails=0) as server:
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_checks_are_counted_per_endpoint_without_failing_requests(tmp_path, alternating, workers, cli_here):
    user = tmp_path / "checker.py"
    user.write_text(USER)
    users = 4
    result = run_cli("run", str(user), "--host", alternating.url, "--users", str(users),
                     "--spawn-rate", "4", "--duration", "4s", "--interval", "1", "--workers", str(workers),
                     "--out", str(tmp_path / "runs"), timeout=90)  # fmt: skip
    assert result.code == 0, result.stderr  # a failed check fails no request
    run = RunDir(result.last_line)
    info, summary = run.read_info(), run.read_summary()
    (endpoint,) = summary["endpoints"]
    by_check = {c["check"]: c for c in info.checks}
    requests = endpoint["requests"]
    print(f"workers {workers}: {requests} requests, server sent {alternating.sent} ({alternating.fails} 'fail'); "
          f"checks {by_check}")
    assert endpoint["failures"] == 0 and set(by_check) == {"status is 200", "body says pass", "raises"}
    checked = by_check["status is 200"]["passes"]
    for c in by_check.values():
        # Every check of a request counted together; a user stopped between its request and its
        # check (at most one per user) leaves that request unchecked.
        assert (c["method"], c["name"]) == ("GET", "/item") and c["passes"] + c["fails"] == checked
    assert requests - users <= checked <= requests
    assert by_check["status is 200"]["fails"] == 0 and by_check["raises"]["passes"] == 0
    # What the server sent, less at most one in-flight response per user cut off by the stop.
    assert alternating.fails - users <= by_check["body says pass"]["fails"] <= alternating.fails
    assert endpoint["checks_failed"] == by_check["body says pass"]["fails"] + checked
    assert summary["overall"]["checks"] == pytest.approx(endpoint["checks_passed"] / (3 * checked), abs=1e-6)
    gate = cli_here("gate", str(run.path), "--threshold", "checks>99%", "--threshold", "GET /item: checks>50%")
    assert gate.code == 1 and "checks" in gate.stdout + gate.stderr
    assert json.loads((run.path / "summary.json").read_text())["overall"]["checks_passed"] == endpoint["checks_passed"]


def test_the_report_lists_checks_failing_first_and_an_aborted_run_says_so(tmp_path, cli_here):
    """A run directory written by the previous release, given checks and an abort in run.json."""
    import shutil
    from pathlib import Path

    run = shutil.copytree(Path(__file__).parent / "data" / "old-run", tmp_path / "run")
    info = json.loads((run / "run.json").read_text())
    info["checks"] = [{"method": "GET", "name": "/", "check": "status is 200", "passes": 90, "fails": 0},
                      {"method": "GET", "name": "/", "check": "has a price", "passes": 60, "fails": 30}]
    info["aborted"], info["status_reason"] = {"threshold": "p95<1ms over 2s"}, "aborted: 'p95<1ms over 2s' failed at 6s"
    (run / "run.json").write_text(json.dumps(info))
    page = cli_here("report", str(run))
    assert page.code == 0, page.stderr
    html = Path(page.last_line).read_text()
    assert "83.33% of 180 checks passed (30 failed)" in html and html.index("has a price") < html.index("status is 200")
    assert "ABORTED" in html and "failed at 6s" in html
