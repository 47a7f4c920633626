"""--abort-on: a threshold judged live over a sliding window stops a run that is already failing.

The pure watch is tested on the recorder's own rows; end to end, real Locust runs (local and
with two workers) against a loopback server that turns slow mid-run."""

from __future__ import annotations

import json
import time

import pytest
from conftest import run_cli
from loopback_http import serve

from loadwise.analysis.rundir import RunDir, epoch_of
from loadwise.analysis.thresholds import parse_abort
from loadwise.engine.abort import AbortWatch
from loadwise.engine.recorder import Recorder

USER = """
from locust import HttpUser, constant, task

class Caller(HttpUser):
    wait_time = constant(0.02)

    @task
    def home(self):
        self.client.get("/")
"""


def _rows(recorder: Recorder, start: float, seconds: int, ms: float, per_second: int = 50) -> list[dict]:
    for s in range(seconds):
        for i in range(per_second):
            recorder.record("GET", "/", ms, 10, None, start + s + i / per_second)
    return recorder.close(start + seconds)


def test_a_window_judges_only_its_last_seconds_and_waits_for_its_delay():
    """20 fast seconds then a slow one: `p95<100ms over 2s` fails (half its window is slow), the
    run-long rule does not (50 slow of 1,050 requests: under 5 %, its p95 is fast), and a rule
    whose delay has not passed is not judged yet."""
    start = 1_000_000.0
    recorder = Recorder(1.0)
    window = AbortWatch([parse_abort("p95<100ms over 2s")], 1.0)
    whole = AbortWatch([parse_abort("p95<100ms")], 1.0)
    late = AbortWatch([parse_abort("p95<100ms over 2s after 30s")], 1.0)
    fast = _rows(recorder, start, 20, 5.0)
    for watch in (window, whole, late):
        watch.start(start)
        watch.add_rows(fast)
        assert watch.judge(start + 20, []) is None
    slow = _rows(recorder, start + 20, 1, 300.0)
    for watch in (window, whole, late):
        watch.add_rows(slow)
    breach = window.judge(start + 21, [])
    assert breach is not None and breach.actual == pytest.approx(300.0, rel=0.01) and breach.elapsed_s == 21.0
    assert epoch_of(breach.to_dict()["window_start"]) == start + 19
    assert "'p95<100ms over 2s' failed at 21s" in breach.describe()
    assert whole.judge(start + 21, []) is None
    assert late.judge(start + 21, []) is None


def test_open_cells_of_ended_intervals_are_judged_before_they_close():
    """A master keeps intervals open for the workers' late reports; an ended one is read where it is."""
    start = 2_000_000.0
    recorder = Recorder(1.0)
    watch = AbortWatch([parse_abort("error_rate<10% over 1s")], 1.0)
    watch.start(start)
    for i in range(20):
        recorder.record("GET", "/", 5.0, 10, "500 Server Error" if i % 2 else None, start + i / 20)
    assert watch.judge(start + 0.5, [recorder]) is None  # not ended yet
    breach = watch.judge(start + 1.0, [recorder])
    assert breach is not None and breach.actual == pytest.approx(0.5) and recorder.cells  # read, not closed


@pytest.mark.parametrize("text, says", [
    ("p95<100ms over 0s", "longer than zero"), ("service_p95<100ms", "only known at the end"),
    ("p95<100ms over soon", "is not a duration"), ("p95 < 1 parsec", "expected a unit"),
])  # fmt: skip
def test_a_bad_abort_rule_is_one_line_before_any_load(tmp_path, text, says):
    result = run_cli("run", "smoke", "--host", "http://127.0.0.1:9", "--duration", "2s", "--abort-on", text, "--out", str(tmp_path))
    assert result.code == 2 and says in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not list(tmp_path.iterdir())


def _degrading(server) -> bytes:
    """Fast until 5 s after the first request, then 250 ms a response."""
    with server.lock:
        if server.slow_from is None:
            server.slow_from = time.time() + 5.0
    if time.time() >= server.slow_from:
        time.sleep(0.25)
    return b"ok"


@pytest.fixture
def degrading():
    with serve(_degrading, slow_from=None) as server:
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("workers, report_lag_s", [(0, 0.0), (2, 3.0)])
def test_a_target_that_degrades_mid_run_is_stopped_within_the_window(tmp_path, degrading, workers, report_lag_s):
    """The target turns slow 5 s into the run; `p95<100ms over 2s` must stop the run within the
    window plus one interval (plus, distributed, Locust's 3 s between a worker's reports) and not
    before the target degraded. Everything up to the stop is in the run directory."""
    user = tmp_path / "caller.py"
    user.write_text(USER)
    window_s, interval_s, flush_s = 2.0, 1.0, 1.0
    result = run_cli("run", str(user), "--host", degrading.url, "--users", "4",
                     "--spawn-rate", "4", "--duration", "40s", "--interval", "1", "--workers", str(workers),
                     "--abort-on", "p95<100ms over 2s", "--out", str(tmp_path / "runs"), "--json", timeout=90)  # fmt: skip
    assert result.code == 1, result.stderr
    found = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    run = RunDir(found["run_dir"])
    info = run.read_info()
    started, slow_from = epoch_of(info.started_at), degrading.slow_from
    stopped = epoch_of(info.load_ended_at)
    print(f"workers {workers}: slow from {slow_from - started:.1f}s, aborted at {info.aborted['elapsed_s']}s "
          f"(window end), load stopped at {stopped - started:.1f}s: {info.status_reason}")
    assert info.status == "completed" and "'p95<100ms over 2s' failed at" in info.status_reason
    assert info.aborted["threshold"] == "p95<100ms over 2s" and info.aborted["actual"] > 100
    assert epoch_of(info.aborted["window_end"]) > slow_from, "stopped before the target degraded"
    assert stopped - slow_from <= window_s + interval_s + flush_s + report_lag_s + 1.0, "not stopped within the window"
    assert found["aborted"] == info.aborted
    intervals = run.read_intervals()
    slow_rows = intervals[intervals["p95_ms"] > 200]
    assert len(slow_rows) >= 1 and run.read_summary()["overall"]["requests"] == int(intervals["requests"].sum())


@pytest.mark.slow
def test_a_rule_that_holds_lets_the_run_complete(tmp_path):
    from loadwise.run.demo_target import DemoTarget

    with DemoTarget(rows=1000) as shop:
        result = run_cli("run", "smoke", "--host", shop.url, "--users", "2", "--spawn-rate", "2", "--duration", "4s",
                         "--interval", "1", "--abort-on", "error_rate<50% over 2s", "--out", str(tmp_path / "runs"))  # fmt: skip
    assert result.code == 0, result.stderr
    info = RunDir(result.last_line).read_info()
    assert info.status == "completed" and info.status_reason is None and info.aborted == {}


def test_the_profile_gives_abort_rules_and_checks_them_when_read(tmp_path):
    from loadwise.config import ConfigError, abort_texts, load_profile

    (tmp_path / "loadwise.toml").write_text('[profiles.ci]\nabort_on = ["p95<500ms over 30s after 1m"]\n')
    assert abort_texts(load_profile("ci", tmp_path / "loadwise.toml")) == ["p95<500ms over 30s after 1m"]
    (tmp_path / "loadwise.toml").write_text('[profiles.ci]\nabort_on = ["p95<500ms over a while"]\n')
    with pytest.raises(ConfigError, match="profiles.ci.abort_on: threshold 'p95<500ms over a while'"):
        load_profile("ci", tmp_path / "loadwise.toml")


def test_an_open_busy_cell_is_read_as_its_histogram_says():
    """A cell past the sparse limit holds an HdrHistogram: its counts are read straight, the same
    buckets its encoding (what the closed row carries) gives."""
    from loadwise.analysis import histogram
    from loadwise.engine.abort import _sparse_of
    from loadwise.engine.recorder import Cell

    cell = Cell()
    for i in range(3000):
        cell.add(float(i % 300), 10, False)
    index, counts = _sparse_of(cell)
    assert cell.hdr is not None and counts.sum() == 3000
    encoded_index, encoded_counts = histogram.sparse_counts(histogram.encode(cell.hdr))
    assert list(index) == list(encoded_index) and list(counts) == list(encoded_counts)
