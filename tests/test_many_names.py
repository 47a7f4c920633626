"""A locustfile that puts ids into its request names: memory stays bounded (sparse cells,
a cap on distinct names with the rest grouped and counted) and the live line says so."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from conftest import run_cli

from loadwise.analysis.rundir import RunDir
from loadwise.engine.recorder import MAX_NAMES, OTHER_NAME, SPARSE_VALUES, Cell, Recorder
from loadwise.engine.stream import Status


def test_names_beyond_the_bound_are_grouped_and_counted():
    recorder = Recorder(5.0)
    for i in range(MAX_NAMES + 4000):
        recorder.record("GET", f"/orders/{i}", 3.0, 10, "boom" if i % 2 else None, 1_800_000_000.5)
    rows = recorder.close(float("inf"))
    names = {row["name"] for row in rows}
    assert len(names) == MAX_NAMES + 1 and OTHER_NAME in names
    other = next(row for row in rows if row["name"] == OTHER_NAME)
    assert other["requests"] == 4000 and len(recorder.grouped_names) == 4000
    assert sum(row["requests"] for row in rows) == MAX_NAMES + 4000  # nothing lost
    assert {e["name"] for e in recorder.error_rows()} <= names


def test_a_name_per_request_costs_kilobytes_not_a_histogram_each():
    tracemalloc.start()
    recorder = Recorder(5.0)
    for i in range(MAX_NAMES):
        for _ in range(3):
            recorder.record("GET", f"/item/{i}", 2.5, 10, None, 1_800_000_000.5)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # a full HDR histogram per cell would be ~185 KB each, ~185 MB here
    assert size < 20 * 2**20, f"{size / 2**20:.1f} MiB for {MAX_NAMES} names"


def test_a_sparse_cell_gives_the_same_percentiles_as_a_histogram():
    sparse, dense = Cell(), Cell()
    values = [0.5 + i * 0.37 for i in range(SPARSE_VALUES)]
    for v in values:
        sparse.add(v, 1, False)
    dense.hdr = dense.histogram()
    for v in values:
        dense.add(v, 1, False)
    sparse.settle(), dense.settle()  # requests only append; settling folds them in (once a second in a run)
    assert sparse.hdr is None and dense.hdr is not None
    for q in (50, 95, 99, 100):
        assert sparse.histogram().get_value_at_percentile(q) == dense.histogram().get_value_at_percentile(q)
    wire = Cell.from_wire(json.loads(json.dumps(sparse.to_wire())))  # as msgpack would carry it
    assert wire.hdr is None and list(wire.values) == values
    sparse.add(1.0, 1, False)  # one more than the bound: the cell becomes a histogram
    sparse.settle()
    assert sparse.hdr is not None and len(sparse.values) == 0 and sparse.requests == SPARSE_VALUES + 1


def test_the_live_line_says_names_were_grouped():
    line = Status(10.0, 60.0, 5, 100.0, 12.0, 1000, 0, grouped_names=42).render()
    assert f"42 more names grouped as {OTHER_NAME!r}" in line
    assert "grouped" not in Status(10.0, 60.0, 5, 100.0, 12.0, 1000, 0).render()


IDS_IN_NAMES = '''
import itertools

from locust import FastHttpUser, constant, task

counter = itertools.count()


class IdsInNames(FastHttpUser):
    wait_time = constant(0)

    @task
    def one(self):
        self.client.get(f"/products/{next(counter) % 20000 + 1}")  # no name=: every id its own endpoint
'''


@pytest.mark.slow
def test_a_run_with_an_id_in_every_name_is_bounded_and_says_so(tmp_path, target):
    locustfile = tmp_path / "ids.py"
    locustfile.write_text(IDS_IN_NAMES)
    result = run_cli("run", str(locustfile), "--host", target.url, "--users", "4", "--duration", "5s",
                     "--out", str(tmp_path / "runs"), timeout=90)  # fmt: skip
    assert result.code == 0, result.stderr
    run_dir = RunDir(Path(result.last_line))
    frame = run_dir.read_intervals()
    info = run_dir.read_info()
    requests = int(frame["requests"].sum())
    assert requests > 2 * MAX_NAMES  # 4 users without think time: several thousand requests in 5 s
    assert frame["name"].nunique() == MAX_NAMES + 1
    assert info.grouped_names["grouped"] == min(requests, 20000) - MAX_NAMES
    assert requests == run_dir.read_summary()["overall"]["requests"] > 0
