"""Capacity models and answers: synthetic data, published reference fits, a real step run."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import assert_one_line_error, run_cli
from services import promtool

from loadwise.capacity.models import USL, Amdahl, CapacityError, Linear, select_model
from loadwise.capacity.planning import CapacitySettings, knee, plan, replicas_needed, slo_capacity
from loadwise.run.demo_target import DemoTarget


def usl(n, lam, sigma, kappa):
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def test_usl_parameters_recovered_within_their_confidence_intervals():
    rng = np.random.default_rng(42)
    n = np.array([1, 2, 4, 8, 12, 16, 24, 32, 48, 64], dtype=float)
    truth = {"lambda": 50.0, "sigma": 0.04, "kappa": 0.0008}
    x = usl(n, *truth.values()) * (1 + rng.normal(0, 0.02, len(n)))
    model = USL().fit(n, x)
    for name, value in truth.items():
        low, high = model.conf_int_[name]
        assert low <= value <= high, (name, value, model.conf_int_[name])
    assert model.r_squared_ > 0.99
    assert model.peak_concurrency_ == pytest.approx(np.sqrt((1 - 0.04) / 0.0008), rel=0.1)
    assert model.predict([10])[0] == pytest.approx(usl(10, *truth.values()), rel=0.05)


def test_amdahl_data_is_not_mistaken_for_usl_with_large_kappa():
    rng = np.random.default_rng(7)
    n = np.array([1, 2, 4, 8, 16, 32, 64, 96, 128], dtype=float)
    x = usl(n, 100.0, 0.05, 0.0) * (1 + rng.normal(0, 0.01, len(n)))
    best, fitted = select_model(n, x)
    assert best.name in ("amdahl", "usl")
    if best.name == "usl":
        assert best.peak_concurrency_ > 10 * n.max()  # any kappa it finds is negligible
    assert fitted["amdahl"].sigma_ == pytest.approx(0.05, rel=0.15)
    linear = np.array([1, 2, 3, 4, 5, 6.0])
    assert select_model(linear, 20 * linear * (1 + np.random.default_rng(1).normal(0, 0.005, 6)))[0].name == "linear"


# Published reference fits (nonlinear least squares on throughput, all parameters fitted).
SPECSDM91 = ([1, 18, 36, 72, 108, 144, 216], [64.9, 995.9, 1652.4, 1853.2, 1828.9, 1775.0, 1702.2])
CISCO = (list(range(1, 33)), [
    955.16, 1878.91, 2688.01, 3548.68, 4315.54, 5130.43, 5931.37, 6531.08, 7219.8, 7867.61, 8278.71, 8646.7,
    9047.84, 9426.55, 9645.37, 9897.24, 10097.6, 10240.5, 10532.39, 10798.52, 11151.43, 11518.63, 11806,
    12089.37, 12075.41, 12177.29, 12211.41, 12158.93, 12155.27, 12118.04, 12140.4, 12074.39])  # fmt: skip
RAYTRACER = ([1, 4, 8, 12, 16, 20, 24, 28, 32, 48, 64], [20, 78, 130, 170, 190, 200, 210, 230, 260, 280, 310])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (SPECSDM91, {"lambda": 89.9952330, "sigma": 0.0277285, "kappa": 0.0001044}),  # R usl, nlxb
        (CISCO, {"lambda": 995.6486, "sigma": 0.02671591, "kappa": 7.690945e-4}),  # usl4j / Schwartz
        (RAYTRACER, {"lambda": 21.8488, "sigma": 0.0578, "kappa": 0.0}),  # R usl 2.x/3.x, bounded
    ],
)
def test_matches_published_reference_fits(data, expected):
    model = USL().fit(*data)
    for name, value in expected.items():
        if value == 0:
            assert model.params_[name] < 1e-9
        else:
            assert model.params_[name] == pytest.approx(value, rel=0.01), name


def test_specsdm91_standard_errors_and_r_squared_match_r():
    model = USL().fit(*SPECSDM91)
    assert model.stderr_["sigma"] == pytest.approx(0.0091217, rel=0.01)
    assert model.stderr_["kappa"] == pytest.approx(0.0000199, rel=0.01)
    assert model.r_squared_ == pytest.approx(0.9896, abs=1e-4)


@pytest.mark.parametrize(
    ("n", "x", "message"),
    [
        ([8], [100], "at least"),
        ([1, 2, 4, 8], [50, 50, 50, 50], "same at every concurrency"),
        ([1, 2, 3, 4], [0, 0, 0, 0], "zero everywhere"),
        ([1, 2, float("nan"), 4], [1, 2, 3, 4], "NaN"),
        ([0, 1, 2, 3], [0, 1, 2, 3], "positive"),
    ],
)
def test_degenerate_input_is_a_clear_error(n, x, message):
    for model in (USL(), Amdahl(), Linear()):
        with pytest.raises(CapacityError, match=message):
            model.fit(n, x)


def _steps(users, rps, p95):
    return pd.DataFrame({"step": range(1, len(users) + 1), "users": users, "rps": rps, "p95_ms": p95,
                         "mean_ms": [p / 2 for p in p95], "intervals": 3, "requests": 100,
                         "p50_ms": p95, "p99_ms": p95, "error_rate": 0.0})  # fmt: skip


def test_slo_capacity_interpolates_between_the_steps_around_the_slo():
    steps = _steps([10, 20, 30, 40], [100, 190, 250, 260], [10, 20, 60, 200])
    result = slo_capacity(steps, 40.0)
    assert result.broken_at_step == 3 and result.last_passing_step == 2
    assert result.capacity_rps == pytest.approx(190 + (40 - 20) / (60 - 20) * 60)
    assert slo_capacity(steps, 5.0).capacity_rps is None
    assert slo_capacity(steps, 500.0).lower_bound is True
    # summary.json keeps its keys: the optional ones only where they say something
    assert set(result.to_dict()) == {"slo", "capacity_rps", "broken_at_step", "note", "last_passing_step", "between_rps"}
    assert set(slo_capacity(steps, 500.0).to_dict()) == {"slo", "capacity_rps", "broken_at_step", "note", "lower_bound"}


def test_knee_replicas_and_plan():
    model = USL().fit(np.arange(1, 9, dtype=float), usl(np.arange(1, 9), 100, 0.05, 0.01))
    k = knee(model, 8, 0.5)
    assert k is not None and 1 < k.concurrency < model.peak_concurrency_
    r = replicas_needed(1000, 260, 0.3)
    assert r.replicas == 5 and "linear horizontal scaling" in r.assumption
    steps = _steps([10, 20, 30, 40], [100, 190, 250, 260], [10, 20, 60, 200])
    result = plan(steps, CapacitySettings(slo_ms=40, target_rps=1000, replicas_in_run=2))
    assert result.replicas.per_instance_rps == pytest.approx(result.slo.capacity_rps / 2)
    stored = result.to_dict()
    assert stored["replicas"]["replicas"] == result.replicas.replicas and stored["knee"] == vars(result.knee)
    with pytest.raises(CapacityError, match="at least 2 steady steps"):
        plan(steps.iloc[:1], CapacitySettings())


@pytest.mark.slow
def test_capacity_fit_file(tmp_path, cli_here):
    csv = tmp_path / "specsdm91.csv"
    csv.write_text("N,X\n" + "\n".join(f"{n},{x}" for n, x in zip(*SPECSDM91)))
    result = cli_here("capacity", "fit", str(csv), "--model", "usl", "--json")
    assert result.code == 0, result.stderr
    out = json.loads(result.stdout)
    assert {"model", "sigma", "kappa", "lambda", "peak_concurrency", "peak_throughput", "r_squared"} <= set(out)
    assert out["sigma"] == pytest.approx(0.0277285, rel=0.01)
    linear = json.loads(cli_here("capacity", "fit", str(csv), "--model", "linear", "--json").stdout)
    assert linear["sigma"] is None and linear["kappa"] is None
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    bad = cli_here("capacity", "fit", str(tmp_path / "bad.csv"))
    assert bad.code == 2
    assert_one_line_error(bad, "needs columns N")


SATURATING_USER = """
from locust import FastHttpUser, constant, task

class Busy(FastHttpUser):
    # The demo's unindexed orders scan with a short think time: one CPU core of the
    # target saturates after a dozen users.
    wait_time = constant(0.02)

    @task
    def orders(self):
        self.client.get("/customers/7/orders", name="/customers/[id]/orders")
"""


@pytest.mark.slow
def test_real_step_run_fits_and_the_slo_capacity_sits_between_its_steps(tmp_path, cli_here):
    """The analyses after the run go through the CLI in this process (cli_here): no interpreter start each."""
    user = tmp_path / "busy.py"
    user.write_text(SATURATING_USER)
    # On this machine the curve sometimes turns down past a dozen users and sometimes plateaus with
    # noise; the F-test keeps Amdahl unless USL's extra parameter is clearly worth it (measured:
    # chosen-model R² 0.79-0.97). The family must describe the run: its best fit explains 85 %.
    # Once in a while the shared machine takes the target's core for a few seconds (seen in CI: a
    # step's throughput fell 25 % and the next recovered, best R² 0.78): then, and only then, the
    # run is measured once more, as a sceptical user would, and the second must fit.
    for attempt in (1, 2):
        with DemoTarget() as shop:
            result = run_cli("run", str(user), "--host", shop.url, "--shape", "step", "--users", "24",
                             "--shape-param", "steps=6", "--duration", "24s", "--interval", "1", "--out", str(tmp_path))
        assert result.code == 0, result.stderr
        run_path = result.last_line
        summary = json.loads((Path(run_path) / "summary.json").read_text())
        assert summary["overall"]["failures"] == 0
        fitted = json.loads(cli_here("capacity", run_path, "--json").stdout)
        p95 = [p["p95_ms"] for p in fitted["points"]]
        assert len(p95) == 6
        slo = float(np.sqrt(min(p95) * max(p95)))  # between the fastest and the slowest step
        out = cli_here("capacity", run_path, "--slo", f"p95<{slo:.2f}ms", "--target-rps", "1000", "--json")
        assert out.code == 0, out.stderr
        answer = json.loads(out.stdout)
        r_squared = [answer["model"]["r_squared"]] + [m["r_squared"] for m in answer["alternatives"].values()]
        best = max(r for r in r_squared if r is not None)
        rates = [p["rps"] for p in answer["points"]]
        disturbed = any(rates[i] < 0.85 * max(rates[:i]) and rates[-1] > 0.95 * max(rates[:i]) for i in range(1, len(rates)))
        if best >= 0.85 or attempt == 2 or not disturbed:
            break
        print(f"\nrun {attempt} disturbed (a step fell and a later one recovered: {rates}, best R² {best:.2f}); measuring again")
    assert best >= 0.85, (answer["model"], answer["points"])
    capacity = answer["slo"]["capacity_rps"]
    low, high = sorted(answer["slo"]["between_rps"])
    assert low <= capacity <= high
    assert answer["replicas"]["replicas"] >= 1
    stored = json.loads((Path(run_path) / "summary.json").read_text())["capacity"]
    assert stored["slo"]["capacity_rps"] == capacity
    text = cli_here("capacity", run_path, "--slo", f"p95<{slo:.2f}ms").stdout
    assert "knee" in text and "SLO p95" in text
    report = cli_here("report", run_path)
    page = Path(report.last_line).read_text()
    assert "Throughput against concurrency" in page or "throughput against concurrency" in page
    not_step = cli_here("capacity", str(tmp_path / "nope"))
    assert not_step.code == 2
    # Alert rules from the same real run: the capacity it measured is the rule's evidence.
    rules_file = tmp_path / "alerts.yml"
    alerts = cli_here("advise", "alerts", run_path, "--slo", f"p95<{slo:.2f}ms", "-o", str(rules_file))
    assert alerts.code == 0, alerts.stderr
    near = next(r for r in yaml.safe_load(rules_file.read_text())["groups"][0]["rules"] if r["alert"] == "RequestRateNearCapacity")
    assert float(near["annotations"]["loadwise_measured_capacity_rps"]) == pytest.approx(capacity, rel=0.01)
    checked = promtool("check", "rules", str(rules_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
