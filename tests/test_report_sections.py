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


OUTCOMES = {  # the steps, the settings, what the section must say, what it must not
    # a demo run: throughput still rising linearly, so no peak and no knee; the SLO broken at once
    "linear, no peak, SLO never met": (_steps([50, 100, 150, 200], [20, 40, 61, 80], [60, 70, 80, 90]),
                                       CapacitySettings(slo_ms=50, target_rps=500),
                                       ["no step met the SLO p95&lt;=50ms", "No peak: the fitted model keeps rising",
                                        "even the first step (users 50) misses the SLO"], ["holds up to"]),
    "saturating, SLO between steps": (_steps([10, 20, 30, 40], [100, 190, 250, 260], [10, 20, 60, 200]),
                                      CapacitySettings(slo_ms=40, target_rps=1000, replicas_in_run=2),
                                      ["SLO p95&lt;=40ms holds up to 220.0 req/s", "replicas for 1000 req/s with 30% margin",
                                       "step 3 (users 30) broke it", "Replicas assume linear horizontal scaling"],
                                      ["no step met the SLO", "every step met the SLO"]),
    "every step meets the SLO, no target": (_steps([10, 20, 30], [100, 190, 270], [5, 6, 7]), CapacitySettings(slo_ms=500),
                                            ["holds up to 270.0 req/s", "every step met the SLO; capacity is at least 270.0"],
                                            ["replicas for", "Replicas assume"]),
    "no SLO at all, two steps": (_steps([10, 20], [100, 150], [5, 9]), CapacitySettings(), ["Model "],
                                 ["holds up to", "no step met the SLO", "replicas for"]),
}  # fmt: skip


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_the_capacity_section_renders_for_every_outcome(tmp_path, outcome):
    steps, settings, says, never = OUTCOMES[outcome]
    result = plan(steps, settings)
    run = make_run(tmp_path / "run", {("GET", "/a"): 5.0}, seconds=20)
    summary = run.read_summary()
    summary["capacity"] = result.to_dict() | {"settings": vars(settings)}
    run.write_summary(summary)
    html = render.write(data.load(str(run.path))).read_text()
    assert "could not be built" not in html
    section = html[html.index('<section id="capacity"'):]
    section = section[: section.index("</section>")]
    assert "Steady steps" in section and "Models compared" in section
    for text in says:
        assert text in section, text
    for text in never:
        assert text not in section, text


def test_missing_figures_show_as_a_dash():
    assert shown(None, ".1f") == "–" and shown(float("nan"), ".0%") == "–" and shown(0.25, ".0%") == "25%"


_INDEX = {"table": "orders", "columns": ["customer_id"], "cost_before": 4073.0, "cost_after": 42.5, "size_bytes": 2_400_000,
          "wider_rejected": [{"columns": ["customer_id", "status"], "cost_after": 30.0, "narrow_cost_after": 42.5}],
          "create_statement": "CREATE INDEX CONCURRENTLY ON orders (customer_id)",
          "statements": [{"query": "SELECT * FROM orders WHERE customer_id = $1", "calls": 20, "total_ms": 180.0}]}  # fmt: skip
DATABASE_OUTCOMES = {
    "no advice yet": (None, "loadwise advise db RUN"),
    "nothing to create": ({"indexes": [], "drop": [], "seq_scans": [], "statements_considered": 3, "skipped": []},
                          "0 index(es) to create"),
    "indexes, a drop, a skipped statement": (
        {"indexes": [_INDEX], "drop": [{"table": "products", "name": "products_category_idx", "reason": "duplicate of x",
                                        "drop_statement": "DROP INDEX CONCURRENTLY products_category_idx"}],
         "seq_scans": [{"table": "orders", "seq_scans": 40, "rows_read": 12_000_000, "rows_per_scan": 300000.0}],
         "statements_considered": 7, "window": "the run", "skipped": [{"query": "SELECT 1; DROP TABLE t", "reason": "2 statements in one entry"}]},
        "CREATE INDEX CONCURRENTLY ON orders (customer_id)"),
    "figures missing": ({"indexes": [{"table": "t", "columns": ["a"], "cost_before": None, "cost_after": None,
                                      "size_bytes": None, "create_statement": "CREATE INDEX ON t (a)", "statements": []}]},
                        "CREATE INDEX ON t (a)"),
}  # fmt: skip


@pytest.mark.parametrize("outcome", sorted(DATABASE_OUTCOMES))
def test_the_database_section_renders_for_every_outcome(tmp_path, outcome):
    block, expected = DATABASE_OUTCOMES[outcome]
    run = make_run(tmp_path / "run", {("GET", "/a"): 5.0}, seconds=20)
    if block is not None:
        summary = run.read_summary()
        summary["database"] = block
        run.write_summary(summary)
    html = render.write(data.load(str(run.path))).read_text()
    assert "could not be built" not in html
    section = html[html.index(">Database indexes<"):]
    assert expected in section
    if block and block.get("skipped"):
        assert "Statements not planned" in section and "2 statements in one entry" in section
        assert "orders (customer_id, status) would cost 30 against 42" in section


def test_the_exceptions_section_shows_each_kind_with_its_traceback(tmp_path):
    run = make_run(tmp_path / "run", {("GET", "/a"): 5.0}, seconds=20)
    html = render.write(data.load(str(run.path))).read_text()
    assert "No task raised an exception." in html  # the file exists, with its header, from the start
    traceback = "Traceback (most recent call last):\n  File \"locustfile.py\", line 9, in checkout\nKeyError: 'cart'"
    run.write_exceptions([{"count": 7, "message": "KeyError('cart')", "traceback": traceback, "nodes": "local"},
                          {"count": 2, "message": "<script>x</script>", "traceback": "ValueError", "nodes": "w1"}])  # fmt: skip
    html = render.write(data.load(str(run.path))).read_text()
    section = html[html.index(">Exceptions in tasks<"):]
    assert "9 exception(s) of 2 kind(s)" in section and "KeyError: &#39;cart&#39;" in section
    assert "<script>x</script>" not in html  # outside text is escaped
