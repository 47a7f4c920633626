"""Every collector problem run.json can record renders in the report, whatever its shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loadwise.reports import data, render
from synthetic import make_run

# The shapes loadwise.run.collector writes into run.json's collector.missing.
PROBLEMS: dict[str, list[dict[str, Any]]] = {
    "prometheus empty result (healthy Prometheus, no series)": [
        {"source": "prometheus", "series": "cpu_seconds", "reason": "empty result"},
    ],
    "prometheus unreachable, every series": [
        {"source": "prometheus", "series": "cpu_seconds", "reason": "Prometheus unreachable: ConnectionError: refused"},
        {"source": "prometheus", "series": "memory_bytes", "reason": "Prometheus unreachable: ConnectionError: refused"},
    ],
    "prometheus bad query": [
        {"source": "prometheus", "series": "http_p95", "reason": "PrometheusApiClientException: HTTP 400 bad_data"},
    ],
    "prometheus credentials missing": [
        {"source": "prometheus", "series": "*", "reason": "environment variable PROM_TOKEN is not set"},
    ],
    "scrape failures, with a target": [
        {"source": "scrape", "series": "*", "target": "http://127.0.0.1:9/metrics", "reason": "3 scrape(s) failed; last: timeout"},
    ],
    "scrape without known metrics": [
        {"source": "scrape", "series": "*", "target": "http://127.0.0.1:9/metrics",
         "reason": "no known metric names (process_*, http_requests_*) in the scrape"},
    ],
    "both sources": [
        {"source": "scrape", "series": "*", "target": "http://127.0.0.1:9/metrics", "reason": "1 scrape(s) failed; last: reset"},
        {"source": "prometheus", "series": "cpu_seconds", "reason": "empty result"},
    ],
    # Older or hand-edited run.json files: the report still renders what it can.
    "a problem without series or reason": [{"source": "prometheus"}],
    "a target of null and a non-string reason": [{"source": "scrape", "series": "*", "target": None, "reason": 42}],
}


def _run_with(tmp_path: Path, missing: Any) -> Path:
    run_dir = make_run(tmp_path / "run", {("GET", "/a"): 20.0}, seconds=20)
    info = json.loads((run_dir.path / "run.json").read_text())
    info["collector"] = {"sources": ["prometheus"], "scrape_urls": [], "prometheus_url": "http://127.0.0.1:9090",
                         "series": {"prometheus": []}, "missing": missing}  # fmt: skip
    (run_dir.path / "run.json").write_text(json.dumps(info))
    return run_dir.path



@pytest.mark.parametrize("case", list(PROBLEMS))
def test_every_collector_problem_renders(tmp_path: Path, case: str) -> None:
    path = _run_with(tmp_path, PROBLEMS[case])
    html = render.write(data.load(str(path))).read_text(encoding="utf-8")
    assert "What the collector could not get" in html
    for problem in PROBLEMS[case]:
        if "reason" in problem:
            assert str(problem["reason"]) in html
        if problem.get("series"):
            assert f"<td>{problem['series']}</td>" in html
        if problem.get("target"):
            assert problem["target"] in html


def test_collector_problem_text_is_escaped(tmp_path: Path) -> None:
    path = _run_with(tmp_path, [{"source": "prometheus", "series": "<b>x</b>", "reason": "<script>alert(1)</script>"}])
    html = render.write(data.load(str(path))).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html


@pytest.mark.parametrize("missing", [None, "empty result", {"series": "x"}, ["empty result"]])
def test_malformed_missing_list_does_not_break_the_report(tmp_path: Path, missing: Any) -> None:
    path = _run_with(tmp_path, missing)
    html = render.write(data.load(str(path))).read_text(encoding="utf-8")
    if missing == ["empty result"]:
        assert "empty result" in html
