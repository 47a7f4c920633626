"""A step-rate step where the load generator itself fell behind is named, with its share of late
arrivals, in the capacity plan's warnings. It stays in the fit: measured on the demo (2 cores,
target and generator on one machine), the steps past the shop's knee had 6-8 % of their arrivals
late by the generator while the achieved rate was already below the offered one, so leaving them
out would have hidden the target's knee."""

from __future__ import annotations

import pandas as pd

from loadwise.analysis.rundir import RunDir, RunInfo, iso_utc
from loadwise.analysis.steps import step_table
from loadwise.capacity.planning import plan
from loadwise.capacity.settings import CapacitySettings
from loadwise.engine.recorder import Recorder

T0 = 1_700_000_000.0


def _steps(late_share: list[float]) -> pd.DataFrame:
    users = [10, 20, 30, 40, 50][: len(late_share)]
    rps = [100, 190, 270, 330, 340][: len(late_share)]
    return pd.DataFrame({"step": range(1, len(users) + 1), "users": users, "rps": rps, "p95_ms": 10.0, "mean_ms": 5.0,
                         "intervals": 3, "requests": 100, "p50_ms": 5.0, "p99_ms": 10.0, "error_rate": 0.0,
                         "offered_rps": rps, "service_mean_ms": 5.0, "generator_late_share": late_share})  # fmt: skip


def test_steps_the_generator_fell_behind_on_are_named_with_their_evidence_and_kept():
    result = plan(_steps([0.0, 0.01, 0.02, 0.03, 0.40]), CapacitySettings())
    assert [p["step"] for p in result.points] == [1, 2, 3, 4, 5]
    assert any("step 5 (40% of its arrivals)" in w and "--workers" in w for w in result.warnings)
    quiet = plan(_steps([0.0, 0.01, 0.02, 0.03, 0.04]), CapacitySettings())
    assert not any("load generator" in w for w in quiet.warnings)
    several = plan(_steps([0.0, 0.3, 0.5]), CapacitySettings())
    assert any("step 2 (30% of its arrivals), step 3 (50% of its arrivals)" in w for w in several.warnings)


def test_each_step_carries_the_share_of_its_arrivals_the_generator_scheduled_late(tmp_path):
    recorder = Recorder(interval_s=1.0)
    recorder.measure_intended()
    for second in range(8):
        for _ in range(10):
            recorder.record("GET", "/a", 5.0, 10, None, T0 + second + 0.5)
    run = RunDir(tmp_path / "r").create(RunInfo(id="r", scenario="s", host="h", shape="step-rate", interval_s=1.0,
                                                shape_params={"steps": 2, "duration_s": 8.0, "rate": 20.0, "users": 5},
                                                started_at=iso_utc(T0)))  # fmt: skip
    run.append_intervals(recorder.close(before=T0 + 100))
    iterations = pd.DataFrame({"start": pd.to_datetime([T0 + s for s in range(8)], unit="s", utc=True),
                               "scheduled": [10] * 8, "started": [10] * 8, "generator_late": [0, 0, 0, 0, 0, 5, 5, 5]})  # fmt: skip
    steps = step_table(run.read_info(), run.read_intervals(), iterations)
    # each step's first interval is warm-up, left out: step 1 is seconds 1-3, step 2 seconds 5-7
    assert list(steps["generator_late_share"]) == [0.0, 0.5]
