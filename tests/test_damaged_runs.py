"""Damaged run directories: what is whole is read, what was dropped is said, each error
names its file, and no numpy warning line rides along with a one-line error."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from conftest import run_cli
from synthetic import make_run

from loadwise.analysis.rundir import RunDir, RunDirWarning, iso_utc
from loadwise.analysis.windows import select


def _torn(tmp_path):
    run = make_run(tmp_path / "torn", {("GET", "/a"): 5.0}, seconds=30)
    path = run.path / "intervals.csv"
    text = path.read_text()
    path.write_text(text[: len(text) - 200])  # a row cut mid-line, as a killed writer leaves it
    return run


def test_a_torn_row_is_left_out_with_a_warning_naming_its_line(tmp_path):
    run = _torn(tmp_path)
    whole = len(run.path.joinpath("intervals.csv").read_text().splitlines()) - 2  # header, torn row
    with pytest.warns(RunDirWarning, match=r"intervals.csv: 1 damaged row\(s\) left out \(line \d+\)"):
        frame = RunDir(run.path).read_intervals()
    assert len(frame) == whole


@pytest.mark.parametrize("command", [["report", "RUN"], ["gate", "RUN"], ["advise", "alerts", "RUN", "--slo", "p95<1s"]])
def test_commands_read_a_torn_run_and_note_what_was_dropped(tmp_path, command):
    run = _torn(tmp_path)
    result = run_cli(*(str(run.path) if arg == "RUN" else arg for arg in command))
    assert result.code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "note:" in line and "damaged row" in line]
    assert len(notes) == 1 and "intervals.csv" in notes[0]
    assert "Warning" not in result.stderr


def test_the_whole_run_window_keeps_the_interval_the_run_started_in(tmp_path):
    """A run killed after one interval: its only interval starts before started_at (intervals
    are aligned to the wall clock) and must stay in the `all` window."""
    run = make_run(tmp_path / "short", {("GET", "/a"): 5.0}, seconds=4)
    info = run.read_info()
    frame = run.read_intervals()
    info.started_at = iso_utc(frame["start"].min().timestamp() + 2.5)  # mid-interval, as real runs start
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(select(info, frame, "all")) == len(frame) == 1
        assert select(info, frame, "all", warmup_s=1).empty
    assert isinstance(frame["start"].iloc[0], pd.Timestamp)
