"""Damaged run directories: what is whole is read, what was dropped is said, each error
names its file, and no numpy warning line rides along with a one-line error."""

from __future__ import annotations

import json
import shutil
import warnings

import pandas as pd
import pytest
from conftest import assert_one_line_error, run_cli
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


def test_a_histogram_cut_at_a_whole_base64_block_is_a_torn_row_too(tmp_path):
    """A full disk cut the last row inside its histogram at a multiple of 4 characters: the text
    still looks like base64, only decoding shows it is cut (seen in CI as a one-line error)."""
    run = make_run(tmp_path / "cut", {("GET", "/a"): 5.0}, seconds=30)
    path = run.path / "intervals.csv"
    lines = path.read_text().splitlines()
    cut = len(lines[-1]) - 40
    cut -= (len(lines[-1]) - len(lines[-1].split(",")[-1]) - cut) % 4  # end the hdr field on a 4-character block
    path.write_text("\n".join(lines[:-1] + [lines[-1][:cut]]) + "\n")
    with pytest.warns(RunDirWarning, match=r"1 damaged row\(s\) left out"):
        frame = RunDir(run.path).read_intervals()
    assert len(frame) == len(lines) - 2


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


def _edit_json(name: str, change: dict):
    def apply(path):
        file = path / name
        file.write_text(json.dumps({**json.loads(file.read_text()), **change}))
    return apply


def _edit_hdr(path, change):
    """intervals.csv with its `hdr` column dropped (change None) or each row's histogram changed."""
    lines = (path / "intervals.csv").read_text().splitlines()
    column = lines[0].split(",").index("hdr")
    rows = [line.split(",") for line in lines]
    for i, row in enumerate(rows):
        if change is None:
            del row[column]
        elif i:
            row[column] = change(row[column])
    (path / "intervals.csv").write_text("\n".join(",".join(row) for row in rows))


DAMAGES = {
    "run.json cut short": ("run.json", lambda p: (p / "run.json").write_text((p / "run.json").read_text()[:50])),
    "run.json a list": ("run.json", lambda p: (p / "run.json").write_text("[]")),
    "run.json started_at a number": ("run.json", _edit_json("run.json", {"started_at": 5})),
    "run.json interval_s a string": ("run.json", _edit_json("run.json", {"interval_s": "x"})),
    "run.json status a number": ("run.json", _edit_json("run.json", {"status": 7})),
    "run.json collector a list": ("run.json", _edit_json("run.json", {"collector": [1]})),
    "summary.json cut short": ("summary.json", lambda p: (p / "summary.json").write_text("{")),
    "summary.json endpoints of numbers": ("summary.json", _edit_json("summary.json", {"endpoints": [1, 2]})),
    "summary.json requests a string": ("summary.json", _edit_json("summary.json", {"overall": {"requests": "x"}})),
    "intervals.csv without its hdr column": ("intervals.csv", lambda p: _edit_hdr(p, None)),
    "intervals.csv a corrupt histogram": ("intervals.csv", lambda p: _edit_hdr(p, lambda hdr: hdr[:-8] + "AAAAAAAA")),
    "intervals.csv binary": ("intervals.csv", lambda p: (p / "intervals.csv").write_bytes(b"\xff\xfe\x00garbage")),
    "metrics.csv a bad time": ("metrics.csv", lambda p: (p / "metrics.csv").write_text(
        "timestamp,source,series,labels,value\nnot-a-time,scrape,cpu_cores,{},1\n")),
}  # fmt: skip


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("healthy") / "run", {("GET", "/a"): 5.0, ("POST", "/b"): 9.0}, seconds=30)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("command", [["report", "RUN"], ["gate", "RUN"], ["compare", "RUN", "RUN"]])
def test_a_damaged_file_is_one_line_naming_it(tmp_path, healthy, cli_here, damage, command):
    """Each damaged file: exit 2 and one line that names the file, except where a command can do
    without it (the gate reads no server metrics; a report recomputes a damaged summary from the intervals)."""
    name, apply = DAMAGES[damage]
    run = tmp_path / "run"
    shutil.copytree(healthy.path, run)
    apply(run)
    result = cli_here(*(str(run) if arg == "RUN" else arg for arg in command))
    if (name, command[0]) in {("metrics.csv", "gate"), ("summary.json", "report"), ("summary.json", "compare")}:
        assert result.code == 0, result.stderr
        return
    assert result.code == 2, result.stderr
    assert_one_line_error(result, name)
