"""Every report section renders for every outcome its analysis can produce: a capacity fit
with no peak, no knee, an SLO no step met, an SLO every step met, no target load."""

from __future__ import annotations

import pandas as pd
import pytest
from synthetic import make_run

from loadwise.capacity.planning import plan
from loadwise.capacity.settings import CapacitySettings
from loadwise.reports import data, render
from loadwise.reports.sections import shown


def _steps(users, rps, p95):
    return pd.DataFrame({"step": range(1, len(users) + 1), "users": users, "rps": rps, "p95_ms": p95,
                         "mean_ms": [p / 2 for p in p95], "intervals": 3, "requests": 100,
                         "p50_ms": p95, "p99_ms": p95, "error_rate": 0.0})  # fmt: skip


OUTCOMES = {
    # a demo run: throughput still rising linearly, so no peak and no knee; the SLO broken at once
    "linear, no peak, SLO never met": (_steps([50, 100, 150, 200], [20, 40, 61, 80], [60, 70, 80, 90]),
                                       CapacitySettings(slo_ms=50, target_rps=500)),
    "saturating, SLO between steps": (_steps([10, 20, 30, 40], [100, 190, 250, 260], [10, 20, 60, 200]),
                                      CapacitySettings(slo_ms=40, target_rps=1000, replicas_in_run=2)),
    "every step meets the SLO, no target": (_steps([10, 20, 30], [100, 190, 270], [5, 6, 7]), CapacitySettings(slo_ms=500)),
    "no SLO at all, two steps": (_steps([10, 20], [100, 150], [5, 9]), CapacitySettings()),
}


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_the_capacity_section_renders_for_every_outcome(tmp_path, outcome):
    steps, settings = OUTCOMES[outcome]
    result = plan(steps, settings)
    run = make_run(tmp_path / "run", {("GET", "/a"): 5.0}, seconds=20)
    summary = run.read_summary()
    summary["capacity"] = result.to_dict() | {"settings": vars(settings)}
    run.write_summary(summary)
    html = render.write(data.load(str(run.path))).read_text()
    assert "could not be built" not in html
    section = html[html.index(">Capacity<"):]
    assert "Steady steps" in section and "Models compared" in section


def test_missing_figures_show_as_a_dash():
    assert shown(None, ".1f") == "–" and shown(float("nan"), ".0%") == "–" and shown(0.25, ".0%") == "25%"
