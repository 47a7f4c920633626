"""The gate on real runs against the demo target: same-build runs pass in every pair, an
injected slowdown on one endpoint fails on that endpoint only (against one baseline and
against a history of same-build runs), and the JUnit file says so.

Same-build runs are run one after another against one demo target, as a CI job would run
them; each is 8 s of 20 users (the +60 ms run 6 s, the +25 % run 10 s: its endpoint needs 100 requests for a p95). (`make bench` has the long version: 10 runs, 90 pairs.)"""

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import run_cli

from loadwise.demo import ROUTES
from loadwise.run.demo_target import DemoTarget

pytestmark = pytest.mark.slow  # every test here runs real load

SAME_BUILD = 6  # all pairs of them; the first 5 (the history the gate needs) and the 6th judged against them
BUSIEST, BUSIEST_ROUTE = "GET /products/[id]", "/products/{id}"
# The build under test spends 10 ms more on every route than the bare demo (~2 ms), so that +25 %
# of its busiest endpoint is a change of a few milliseconds: above the gate's 2 ms floor, under
# which no latency change is called a regression on any machine. Every route, not one: a build
# with one slow route has a two-humped overall distribution whose median jumps between the humps
# as the endpoint mix varies from run to run (seen: overall p50 3.5 ms in one run, 11.5 in five).
BUILD_MS = 10.0


def _build(busiest_ms: float = BUILD_MS) -> list[str]:
    """--inject-latency for every route of the demo, the busiest one at `busiest_ms`."""
    args = []
    for route in ROUTES:
        args += ["--inject-latency", f"{route}={busiest_ms if route == BUSIEST_ROUTE else BUILD_MS:g}"]
    return args


def _runs(out: Path, count: int, extra: list[str], seconds: int = 8) -> list[str]:
    paths = []
    with DemoTarget(rows=2000, extra_args=extra) as shop:
        for _ in range(count):
            result = run_cli("run", "browse", "--host", shop.url, "--users", "20", "--spawn-rate", "20",
                             "--duration", f"{seconds}s", "--interval", "1", "--out", str(out))  # fmt: skip
            assert result.code == 0, result.stderr
            paths.append(result.last_line)
    return paths


def _p95(run: str, endpoint: str) -> float:
    summary = json.loads((Path(run) / "summary.json").read_text())
    return next(e["p95_ms"] for e in summary["endpoints"] if f"{e['method']} {e['name']}" == endpoint)


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("gate-runs")
    same = _runs(out, SAME_BUILD, _build())
    # +25 % on the busiest endpoint: a quarter of its median p95 over the same-build runs, added to every request.
    typical = sorted(_p95(run, BUSIEST) for run in same)[len(same) // 2]
    plus25 = 0.25 * typical
    return {
        "same": same,
        "plus25": _runs(out, 1, _build(round(BUILD_MS + plus25, 2)), seconds=10)[0],  # p95 needs 100 requests
        "plus25_ms": plus25,
        "typical_ms": typical,
        "slow": _runs(out, 1, _build(BUILD_MS + 60), seconds=6)[0],
    }


def test_every_pair_of_same_build_runs_passes(real_runs, cli_here):
    """`gate --calibrate`: all ordered pairs of 6 same-build runs through the gate's own comparison."""
    result = cli_here("gate", "--calibrate", *real_runs["same"], "--warmup", "2s", "--json")
    assert result.code == 0, result.stderr
    calibration = json.loads(result.stdout)
    print(f"same-build pairs: {calibration['false_alarms']} false alarms in {calibration['pairs']} pairs",
          calibration["false_alarms_by_metric"])
    assert calibration["pairs"] == 30 and calibration["false_alarms"] == 0


def test_the_history_catches_a_slowdown_and_passes_the_same_build(real_runs, tmp_path, cli_here):
    history = tmp_path / "history.db"
    for run in real_runs["same"][:5]:
        result = cli_here("gate", run, "--history", str(history), "--warmup", "2s", "--json")
        assert result.code == 0, result.stdout
    shutil.copyfile(history, tmp_path / "copy.db")
    same = cli_here("gate", real_runs["same"][5], "--history", str(history), "--warmup", "2s", "--json")
    assert same.code == 0, json.loads(same.stdout)["failures"]
    slow = cli_here("gate", real_runs["plus25"], "--history", str(tmp_path / "copy.db"), "--warmup", "2s", "--json")
    verdict = json.loads(slow.stdout)
    print(f"+{real_runs['plus25_ms']:.2f} ms (+25 % of p95 {real_runs['typical_ms']:.2f} ms) on {BUSIEST}:", verdict["failures"])
    assert slow.code == 1
    assert {h["endpoint"] for h in verdict["history"] if h["decision"] == "regression"} - {"overall"} == {BUSIEST}


def test_two_runs_of_the_same_build_pass(real_runs, tmp_path, cli_here):
    result = cli_here("gate", real_runs["same"][1], "--baseline", real_runs["same"][0], "--warmup", "2s", "--json")
    verdict = json.loads(result.stdout)
    assert result.code == 0, verdict["failures"]
    assert verdict["passed"] and any(c["endpoint"] == "GET /products/[id]" for c in verdict["comparisons"])


def test_injected_latency_fails_that_endpoint_only(real_runs, tmp_path, cli_here):
    junit, markdown = tmp_path / "gate.xml", tmp_path / "gate.md"
    result = cli_here("gate", real_runs["slow"], "--baseline", real_runs["same"][0], "--warmup", "2s",
                     "--threshold", "p99<2s", "--junit", str(junit), "--markdown", str(markdown), "--json")
    assert result.code == 1
    verdict = json.loads(result.stdout)
    regressed = {c["endpoint"] for c in verdict["comparisons"] if c["decision"] == "regression"}
    assert regressed - {"overall"} == {"GET /products/[id]"}
    suite = ET.parse(junit).getroot().find("testsuite")
    failed = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failed and all("/products/[id]" in name or name.startswith("overall") for name in failed)
    assert any(name.startswith("GET /products/[id] p95_ms") or name.startswith("GET /products/[id] p50_ms") for name in failed)
    assert int(suite.get("failures")) == len(failed)
    text = markdown.read_text()
    assert "❌ FAIL" in text and "GET /products/[id]" in text
    report = cli_here("report", real_runs["slow"])  # the report shows the gate's comparison
    assert "Against baseline" in Path(report.last_line).read_text()
