"""The gate on real runs against the demo target: the same build passes, an injected
slowdown on one endpoint fails on that endpoint only, and the JUnit file says so."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import run_cli

from loadwise.run.demo_target import DemoTarget

pytestmark = pytest.mark.slow  # every test here runs real load


def _run(out: Path, extra: list[str]) -> str:
    with DemoTarget(rows=2000, extra_args=extra) as shop:
        result = run_cli("run", "browse", "--host", shop.url, "--users", "20", "--spawn-rate", "20",
                         "--duration", "12s", "--interval", "1", "--out", str(out))
    assert result.code == 0, result.stderr
    return result.last_line


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("gate-runs")
    return {
        "a": _run(out, []),
        "b": _run(out, []),
        "slow": _run(out, ["--inject-latency", "/products/{id}=50"]),
    }


def test_two_runs_of_the_same_build_pass(real_runs, tmp_path):
    result = run_cli("gate", real_runs["b"], "--baseline", real_runs["a"], "--warmup", "2s", "--json")
    verdict = json.loads(result.stdout)
    assert result.code == 0, verdict["failures"]
    assert verdict["passed"] and any(c["endpoint"] == "GET /products/[id]" for c in verdict["comparisons"])


def test_injected_latency_fails_that_endpoint_only(real_runs, tmp_path):
    junit, markdown = tmp_path / "gate.xml", tmp_path / "gate.md"
    result = run_cli("gate", real_runs["slow"], "--baseline", real_runs["a"], "--warmup", "2s",
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
    report = run_cli("report", real_runs["slow"])  # the report shows the gate's comparison
    assert "Against baseline" in Path(report.last_line).read_text()
