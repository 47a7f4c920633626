"""`loadwise advise alerts`: a rule file promtool accepts, whose alerts fire on series that
cross their thresholds and stay silent on series that do not (`promtool test rules`)."""

from __future__ import annotations

import copy
import json
import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import assert_one_line_error, run_cli
from services import promtool
from synthetic import make_run

from loadwise.analysis.rundir import RunDir, RunInfo, iso_utc
from loadwise.analysis.steps import step_table
from loadwise.analysis.summary import write_summary
from loadwise.analysis.thresholds import parse
from loadwise.capacity.alerts import AlertError, AlertSettings, alert_rules, parse_selector
from loadwise.capacity.planning import slo_capacity
from loadwise.engine.recorder import Recorder

RUN_ID = "20261126T130000Z-browse"
STEP_RPS = (20, 40, 55, 60)
STEP_MEDIAN_MS = (40, 80, 200, 600)  # p95 (lognormal, sigma 0.2) about 1.4x: p95<300ms breaks in step 4
SELECTOR = '{job="shop"}'


def make_step_run(path: Path, step_s: int = 20, interval_s: float = 5.0, seed: int = 3) -> RunDir:
    """A `step` run recorded without Locust: throughput flattens while latency climbs."""
    rng = np.random.default_rng(seed)
    t0 = 1_800_000_000.0
    recorder = Recorder(interval_s)
    for k, (rps, median) in enumerate(zip(STEP_RPS, STEP_MEDIAN_MS)):
        for second in range(step_s):
            at = t0 + k * step_s + second
            recorder.sample_users(10 * (k + 1), at)
            for value in rng.lognormal(np.log(median), 0.2, rps):
                recorder.record("GET", "/products/[id]", float(value), 512, None, at + rng.random())
    steps = len(STEP_RPS)
    info = RunInfo(id=path.name, scenario="browse", host="http://127.0.0.1:9", shape="step",
                   shape_params={"users": 10 * steps, "steps": steps, "duration_s": steps * step_s},
                   started_at=iso_utc(t0), ended_at=iso_utc(t0 + steps * step_s), interval_s=interval_s,
                   status="completed")  # fmt: skip
    run_dir = RunDir(path).create(info)
    run_dir.append_intervals(recorder.close(float("inf")))
    run_dir.write_errors(recorder.error_rows())
    write_summary(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("alerts")
    run_dir = make_step_run(base / RUN_ID)
    out = base / "rules.yml"
    result = run_cli("advise", "alerts", str(run_dir.path), "--slo", "p95<300ms", "--slo", "error_rate<1%",
                     "--selector", SELECTOR, "-o", str(out), cwd=base)  # fmt: skip
    assert result.code == 0, result.stderr
    document = yaml.safe_load(out.read_text())
    rules = {r["alert"]: r for r in document["groups"][0]["rules"]}
    return {"dir": base, "run": run_dir, "file": out, "document": document, "rules": rules, "stderr": result.stderr}


def test_thresholds_are_the_runs_capacity_and_slos(generated):
    rules = generated["rules"]
    assert generated["document"]["groups"][0]["name"] == "loadwise-browse"
    assert list(rules) == ["RequestRateNearCapacity", "LatencyP95AboveSLO", "ErrorRatioAboveSLO"]
    run_dir = generated["run"]
    steps = step_table(run_dir.read_info(), run_dir.read_intervals())
    expected = slo_capacity(steps, 300.0, "p95").capacity_rps  # what `loadwise capacity --slo p95<300ms` says
    assert STEP_RPS[2] - 1 < expected < STEP_RPS[3] + 1
    cap = rules["RequestRateNearCapacity"]
    notes = cap["annotations"]
    assert float(notes["loadwise_measured_capacity_rps"]) == pytest.approx(expected, rel=1e-5)
    assert float(notes["loadwise_threshold"]) == pytest.approx(0.8 * expected, rel=1e-5)
    assert notes["loadwise_run"] == RUN_ID and notes["loadwise_slo"] == "p95<300ms"
    assert cap["expr"] == f'sum by (pod) (rate(http_requests_total{SELECTOR}[5m])) > {notes["loadwise_threshold"]}'
    assert cap["for"] == "5m" and cap["labels"]["severity"] == "warning"
    assert f"{0.8 * expected:.1f} req/s = 80%" in notes["description"] and RUN_ID in notes["description"]
    latency = rules["LatencyP95AboveSLO"]
    assert latency["expr"] == ('histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket'
                               f'{SELECTOR}[5m]))) >= 0.3')  # fmt: skip
    assert latency["for"] == "10m" and latency["annotations"]["loadwise_threshold"] == "0.3"
    errors = rules["ErrorRatioAboveSLO"]
    assert errors["expr"].endswith(">= 0.01") and 'status=~"5.."' in errors["expr"]
    assert f"{expected:.1f} req/s per pod" in generated["stderr"]


def test_promtool_accepts_the_rule_file(generated):
    result = promtool("check", "rules", str(generated["file"]))
    assert result.returncode == 0, result.stdout + result.stderr


def _counter(labels: str, per_second: float) -> dict[str, str]:
    return {"series": f"{labels}", "values": f"0+{per_second * 60:g}x40"}  # one sample a minute


def _expected(rule: dict[str, Any], labels: dict[str, str], value: str) -> dict[str, Any]:
    """The alert promtool should report: the rule's own labels and annotations, templates filled in."""
    annotations = {}
    for key, text in rule["annotations"].items():
        for template in ("{{ $value | humanize }}", "{{ $value | humanizeDuration }}", "{{ $value | humanizePercentage }}"):
            text = text.replace(template, value)
        annotations[key] = text.replace("{{ $labels.pod }}", labels.get("pod", ""))
    return {"exp_labels": rule["labels"] | labels, "exp_annotations": annotations}


def _case(name: str, series: list[dict[str, str]], alertname: str, early: str, late: str,
          expected: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """Nothing before the `for` duration has passed (`early`), then `expected` (`late`)."""
    return {"name": name, "interval": "1m", "input_series": series, "alert_rule_test": [
        {"eval_time": early, "alertname": alertname, "exp_alerts": []},
        {"eval_time": late, "alertname": alertname, "exp_alerts": expected},
    ]}  # fmt: skip


def unit_tests(generated: dict[str, Any]) -> dict[str, Any]:
    rules = generated["rules"]
    cap = rules["RequestRateNearCapacity"]
    threshold = float(cap["annotations"]["loadwise_threshold"])
    hot, cool = math.ceil(1.5 * threshold), math.floor(0.5 * threshold)
    shop = 'job="shop",method="GET",route="/products/{id}"'
    buckets = ("0.1", "0.25", "0.5", "1", "+Inf")

    def histogram(fast: float, slow: float) -> list[dict[str, str]]:
        # `fast` requests/s under 100 ms, `slow` ones between 0.5 and 1 s
        return [_counter(f'http_request_duration_seconds_bucket{{{shop},pod="a",le="{le}"}}',
                         fast + (slow if le in ("1", "+Inf") else 0)) for le in buckets]  # fmt: skip

    def statuses(ok: float, failed: float) -> list[dict[str, str]]:
        return [_counter(f'http_requests_total{{{shop},pod="a",status="200"}}', ok),
                _counter(f'http_requests_total{{{shop},pod="a",status="500"}}', failed)]  # fmt: skip

    latency, errors = rules["LatencyP95AboveSLO"], rules["ErrorRatioAboveSLO"]
    tests = [
        _case("a pod over the capacity threshold fires; one under it and another job do not", [
            _counter(f'http_requests_total{{{shop},pod="hot",status="200"}}', hot),
            _counter(f'http_requests_total{{{shop},pod="cool",status="200"}}', cool),
            _counter('http_requests_total{job="other",method="GET",route="/",pod="elsewhere",status="200"}', 10 * hot),
        ], "RequestRateNearCapacity", "4m", "10m", [_expected(cap, {"pod": "hot"}, str(hot))]),  # fmt: skip
        _case("pods under the capacity threshold stay silent", [
            _counter(f'http_requests_total{{{shop},pod="cool",status="200"}}', cool),
        ], "RequestRateNearCapacity", "4m", "10m", []),  # fmt: skip
        # p95 of requests spread evenly over (0.5 s, 1 s]: 0.5 + 0.95 * 0.5 = 0.975 s
        _case("p95 above the SLO fires", histogram(0, 10), "LatencyP95AboveSLO", "8m", "15m",
              [_expected(latency, {}, "975ms")]),
        _case("p95 under the SLO stays silent", histogram(10, 0.2), "LatencyP95AboveSLO", "8m", "15m", []),
        _case("an error ratio above the SLO fires", statuses(9.5, 0.5), "ErrorRatioAboveSLO", "8m", "15m",
              [_expected(errors, {}, "5%")]),
        _case("an error ratio under the SLO stays silent", statuses(9.95, 0.05), "ErrorRatioAboveSLO", "8m", "15m", []),
    ]
    return {"rule_files": [str(generated["file"])], "evaluation_interval": "1m", "tests": tests}


def _promtool_test(path: Path, document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return promtool("test", "rules", str(path))


def test_each_alert_fires_over_its_threshold_and_stays_silent_under_it(generated):
    document = unit_tests(generated)
    result = _promtool_test(generated["dir"] / "alerts-test.yml", document)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout

    # The same check must be able to fail: a silent series expected to fire, a wrong number.
    silent_fires = copy.deepcopy(document)
    silent_fires["tests"][3]["alert_rule_test"][1]["exp_alerts"] = document["tests"][2]["alert_rule_test"][1]["exp_alerts"]
    wrong_number = copy.deepcopy(document)
    wrong_number["tests"][0]["alert_rule_test"][1]["exp_alerts"][0]["exp_annotations"]["loadwise_threshold"] = "1"
    for name, broken in (("silent-fires", silent_fires), ("wrong-number", wrong_number)):
        failed = _promtool_test(generated["dir"] / f"alerts-test-{name}.yml", broken)
        assert failed.returncode != 0, name
        assert "FAILED" in failed.stdout + failed.stderr, name


def test_a_run_without_steps_still_gets_its_slo_rules(tmp_path):
    run_dir = make_run(tmp_path / "constant", {("GET", "/"): 20.0}, seconds=10)
    result = run_cli("advise", "alerts", str(run_dir.path), "--slo", "p99<1s", "--json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "no capacity rule" in result.stderr and "step" in result.stderr
    out = json.loads(result.stdout)
    assert [r["alert"] for r in out["rules"]["groups"][0]["rules"]] == ["LatencyP99AboveSLO"]
    assert out["capacity"] is None


def test_bad_input_is_one_line_and_exit_2(tmp_path, generated):
    run_dir = make_run(tmp_path / "constant", {("GET", "/"): 20.0}, seconds=10)
    no_slo = run_cli("advise", "alerts", str(run_dir.path), cwd=tmp_path)
    assert no_slo.code == 2
    assert_one_line_error(no_slo, "no SLO", "--slo")
    bad_selector = run_cli("advise", "alerts", str(generated["run"].path), "--slo", "p95<300ms",
                           "--selector", "job=shop", cwd=tmp_path)  # fmt: skip
    assert bad_selector.code == 2
    assert_one_line_error(bad_selector, "--selector 'job=shop'")


def test_settings_and_slos_that_cannot_make_rules():
    assert parse_selector('{job="shop", namespace=~"prod|canary"}') == ['job="shop"', 'namespace=~"prod|canary"']
    assert parse_selector("") == [] and parse_selector("{}") == []
    info = RunInfo(id="r", scenario="./my_users.py", host="http://127.0.0.1:9", shape="constant")
    empty = step_table(info, RunDir("nowhere").read_intervals())
    group = alert_rules(info, {}, empty, [parse("p95<300ms"), parse("p95<250ms"), parse("rps>10"),
                                          parse("GET /x: p99<1s")], AlertSettings(pod_label="instance"))  # fmt: skip
    assert group.name == "loadwise-my_users" and [r["annotations"]["loadwise_slo"] for r in group.rules] == ["p95<250ms"]
    assert any("is tighter" in n for n in group.notes) and any("per-endpoint" in n for n in group.notes)
    with pytest.raises(AlertError, match="nothing to alert on"):
        alert_rules(info, {}, empty, [parse("rps>10")], AlertSettings())
    for bad in (AlertSettings(pod_label="pod-name"), AlertSettings(capacity_fraction=0), AlertSettings(replicas_in_run=0)):
        with pytest.raises(AlertError):
            bad.check()
