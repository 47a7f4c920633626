"""The run directory: round trips, summaries from stored histograms, malformed files."""

import json

import numpy as np
import pytest

from loadwise.analysis import histogram
from loadwise.analysis.rundir import RunDir, RunDirError, RunInfo, make_run_id
from loadwise.analysis.summary import summarize, write_summary
from loadwise.engine.recorder import Recorder


def _run(tmp_path, values_by_endpoint, interval_s=5.0):
    recorder = Recorder(interval_s)
    for (method, name), values in values_by_endpoint.items():
        for i, value in enumerate(values):
            recorder.record(method, name, value, 100, "boom" if i % 10 == 0 else None, at=1_000_000.0 + i * 0.01)
    run_dir = RunDir(tmp_path / "r").create(RunInfo(id="r", scenario="browse", host="http://127.0.0.1:1",
                                                      started_at="1970-01-12T13:46:40Z", ended_at="1970-01-12T13:46:50Z"))
    rows = recorder.close(float("inf"))
    run_dir.append_intervals(rows[:2])
    run_dir.append_intervals(rows[2:])
    run_dir.write_errors(recorder.error_rows())
    return run_dir


def test_round_trip_and_summary_from_merged_histograms(tmp_path):
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(2, 0.5, 600), rng.lognormal(4, 0.3, 400)
    run_dir = _run(tmp_path, {("GET", "/a"): a, ("POST", "/b"): b})
    frame = run_dir.read_intervals()
    assert frame["requests"].sum() == 1000 and str(frame["start"].dt.tz) == "UTC"
    summary = write_summary(run_dir)
    assert json.loads((run_dir.path / "summary.json").read_text()) == summary
    overall = summary["overall"]
    assert overall["requests"] == 1000 and overall["failures"] == 100 and overall["rps"] == 100.0
    both = np.concatenate([a, b])
    assert overall["p95_ms"] == pytest.approx(np.percentile(both, 95, method="inverted_cdf"), rel=0.01)
    assert overall["mean_ms"] == pytest.approx(both.mean(), rel=1e-4)
    assert [(e["method"], e["name"], e["requests"]) for e in summary["endpoints"]] == [("GET", "/a", 600), ("POST", "/b", 400)]
    assert set(summary["endpoints"][0]) >= {"requests", "failures", "rps", "error_rate", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"}
    errors = run_dir.read_errors()
    assert errors["count"].sum() == 100


def test_summary_keeps_keys_later_analyses_added(tmp_path):
    run_dir = _run(tmp_path, {("GET", "/a"): [1.0, 2.0]})
    run_dir.write_summary({"slo": {"verdict": "pass"}})
    assert write_summary(run_dir)["slo"] == {"verdict": "pass"}


def test_empty_run_summarizes_to_zeroes(tmp_path):
    run_dir = RunDir(tmp_path / "e").create(RunInfo(id="e", scenario="smoke", host="http://127.0.0.1:1"))
    summary = summarize(run_dir.read_info(), run_dir.read_intervals())
    assert summary.overall.requests == 0 and summary.overall.p95_ms is None and summary.endpoints == []


def test_malformed_files_raise_run_dir_error_naming_the_file(tmp_path):
    run_dir = _run(tmp_path, {("GET", "/a"): [1.0]})
    (run_dir.path / "run.json").write_text("{not json")
    with pytest.raises(RunDirError, match="run.json: malformed JSON"):
        run_dir.read_info()
    (run_dir.path / "intervals.csv").write_text("start,method\n2026-01-01T00:00:00Z,GET\n")
    with pytest.raises(RunDirError, match="missing columns"):
        run_dir.read_intervals()
    with pytest.raises(RunDirError, match="no such file"):
        RunDir(tmp_path / "nothing").read_info()


def test_run_id_format():
    from datetime import datetime, timezone

    moment = datetime(2026, 11, 26, 13, 5, 9, tzinfo=timezone.utc)
    assert make_run_id("browse", moment) == "20261126T130509Z-browse"
    assert make_run_id("tests/my locust.py", moment) == "20261126T130509Z-my_locust"


def test_histogram_clamps_instead_of_dropping():
    h = histogram.new_histogram()
    histogram.record_ms(h, 0.0)
    histogram.record_ms(h, 10 * 3600 * 1000.0)
    assert h.get_total_count() == 2


def test_start_and_end_keep_their_milliseconds_so_rates_use_the_true_duration():
    """A 15.5 s run was stored to the second (16 s), and its request rate came out ~3 % low."""
    import pandas as pd

    from loadwise.analysis.rundir import RunInfo, epoch_of, iso_utc
    from loadwise.analysis.summary import run_duration_s

    t0 = 1_800_000_000.25
    info = RunInfo(id="x", scenario="s", host="http://127.0.0.1:9", started_at=iso_utc(t0), ended_at=iso_utc(t0 + 15.5))
    assert info.started_at == "2027-01-15T08:00:00.250Z" and epoch_of(info.ended_at) == t0 + 15.5
    assert run_duration_s(info, pd.DataFrame()) == 15.5
    assert iso_utc(1_800_000_005.0) == "2027-01-15T08:00:05Z"  # interval starts keep their whole-second form


def test_half_second_intervals_read_back_with_whole_and_fractional_starts(tmp_path):
    """--interval 0.5 writes `...:00Z` and `...:00.500Z` in one column: each start is read, none refused."""
    recorder = Recorder(interval_s=0.5)
    t0 = 1_700_000_000.0
    for k in range(4):
        recorder.record("GET", "/a", 5.0, 10, None, t0 + 0.5 * k + 0.1)
    run = RunDir(tmp_path / "r").create(RunInfo(id="r", scenario="s", host="h", interval_s=0.5))
    rows = recorder.close(before=t0 + 10)
    assert sorted(row["start"].endswith(".500Z") for row in rows) == [False, False, True, True]  # both forms, mixed
    run.append_intervals(rows)
    starts = run.read_intervals()["start"]
    assert [t.timestamp() for t in starts] == [t0 + 0.5 * k for k in range(4)]
