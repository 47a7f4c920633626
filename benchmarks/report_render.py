"""Report render time and file size for a synthetic 1-hour run: 5 s intervals, 50 endpoints.

The histograms are real HDR encodings (a pool of 200, drawn at random per row); the time
covers what `loadwise report` does: load the run directory and render the page.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from loadwise.analysis import histogram
from loadwise.analysis.rundir import RunDir, RunInfo, iso_utc
from loadwise.analysis.summary import write_summary
from loadwise.reports import data, render

HOURS, INTERVAL_S, ENDPOINTS = 1, 5.0, 50


def synthetic_run(path: Path) -> RunDir:
    rng = np.random.default_rng(5)
    pool = []
    for _ in range(200):
        h = histogram.new_histogram()
        for v in rng.lognormal(2.5, 0.6, 100):
            histogram.record_ms(h, float(v))
        pool.append((h, histogram.encode(h), histogram.percentiles_ms(h)))
    t0 = 1_800_000_000.0
    intervals = int(HOURS * 3600 / INTERVAL_S)
    rows = []
    for i in range(intervals):
        start = iso_utc(t0 + i * INTERVAL_S)
        for e in range(ENDPOINTS):
            h, encoded, pct = pool[rng.integers(len(pool))]
            rows.append({"start": start, "interval_s": INTERVAL_S, "method": "GET", "name": f"/endpoint/{e:02d}/[id]",
                         "requests": 100, "failures": int(rng.integers(0, 2)), "users": 50.0, "mean_ms": 12.0,
                         **{k: round(v, 3) for k, v in pct.items()}, "max_ms": h.get_max_value() / 1000,
                         "bytes": 51200, "hdr": encoded})  # fmt: skip
    info = RunInfo(id=path.name, scenario="synthetic", host="http://127.0.0.1:9", shape="constant",
                   shape_params={"users": 50, "duration_s": HOURS * 3600}, started_at=iso_utc(t0),
                   ended_at=iso_utc(t0 + HOURS * 3600), interval_s=INTERVAL_S, status="completed")  # fmt: skip
    run_dir = RunDir(path).create(info)
    run_dir.append_intervals(rows)
    write_summary(run_dir)
    return run_dir


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = synthetic_run(Path(tmp) / "synthetic-1h")
        rows = int(HOURS * 3600 / INTERVAL_S) * ENDPOINTS
        print(f"report render: synthetic run of {HOURS} h at {INTERVAL_S:g} s intervals, {ENDPOINTS} endpoints ({rows} rows)")
        times = []
        for n in range(3):
            started = time.perf_counter()
            out = render.write(data.load(str(run_dir.path)))
            times.append(time.perf_counter() - started)
            print(f"  round {n + 1}: {times[-1]:.2f} s", flush=True)
        size = out.stat().st_size
        median = statistics.median(times)
        print(f"median render time {median:.2f} s (goal < 3 s: {'met' if median < 3 else 'NOT met'}); "
              f"file size {size / 1e6:.2f} MB (goal < 3 MB: {'met' if size < 3e6 else 'NOT met'})")


if __name__ == "__main__":
    main()
