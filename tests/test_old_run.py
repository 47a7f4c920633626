"""A run directory written by an earlier loadwise (tests/data/old-run: a 9 s step run of the demo
shop by the release before results became dataclasses, then `capacity`, `advise hpa`, `advise
cache` and `gate` on it) still reads and renders: summary.json's keys are the contract, and the
typed results read them back."""

import json
import shutil
from pathlib import Path

from loadwise.analysis.summary import RunSummary, summarize
from loadwise.analysis.rundir import RunDir
from loadwise.reports import data, render

OLD = Path(__file__).parent / "data" / "old-run"


def test_the_new_summary_has_the_old_keys_and_values(tmp_path):
    run = RunDir(shutil.copytree(OLD, tmp_path / "run"))
    stored = json.loads((OLD / "summary.json").read_text())
    fresh = summarize(run.read_info(), run.read_intervals()).to_dict()
    for key in ("run_id", "status", "duration_s", "overall", "endpoints"):
        assert fresh[key] == stored[key], key  # recomputed by today's code from the old files: the same document
    assert RunSummary.from_dict(stored).to_dict() == fresh


def test_an_old_run_directory_renders_every_section_it_has(tmp_path, cli_here):
    run = shutil.copytree(OLD, tmp_path / "run")
    html = render.write(data.load(str(run))).read_text()
    assert "could not be built" not in html
    for section in ("capacity", "autoscaling", "cache", "regression"):
        assert f'<section id="{section}"' in html, section
    stored = json.loads((OLD / "summary.json").read_text())
    assert f"{stored['capacity']['slo']['capacity_rps']:.1f} req/s" in html
    report = cli_here("report", str(run), "--threshold", "p95<1s", "--json")
    assert report.code == 0, report.stderr
    gate = cli_here("gate", str(run), "--threshold", "p95<1s", "--json")
    assert gate.code == 0 and json.loads(gate.stdout)["thresholds"][0]["actual"] == stored["overall"]["p95_ms"]
