"""Run directories built directly through the run-directory API, for report and edge-case tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadwise.analysis.rundir import RunDir, RunInfo, iso_utc
from loadwise.analysis.summary import write_summary
from loadwise.engine.recorder import Recorder


def make_run(path: Path, endpoints: dict[tuple[str, str], float], seconds: int = 60, interval_s: float = 5.0,
             status: str = "completed", errors: dict[tuple[str, str], str] | None = None,
             tags: dict[str, str] | None = None, seed: int = 1) -> RunDir:  # fmt: skip
    """Endpoints map (method, name) to a median latency in ms; ~20 requests/s each."""
    rng = np.random.default_rng(seed)
    t0 = 1_800_000_000.0
    recorder = Recorder(interval_s)
    for second in range(seconds):
        recorder.sample_users(10, t0 + second)
        for (method, name), median in endpoints.items():
            for value in rng.lognormal(np.log(median), 0.4, 20):
                error = (errors or {}).get((method, name)) if rng.random() < 0.05 else None
                recorder.record(method, name, float(value), 512, error, t0 + second + rng.random())
    info = RunInfo(id=path.name, scenario="synthetic", host="http://127.0.0.1:9", shape="constant",
                   shape_params={"users": 10, "duration_s": seconds}, started_at=iso_utc(t0),
                   ended_at=iso_utc(t0 + seconds), interval_s=interval_s, tags=tags or {}, status=status)  # fmt: skip
    run_dir = RunDir(path).create(info)
    run_dir.append_intervals(recorder.close(float("inf")))
    run_dir.write_errors(recorder.error_rows())
    write_summary(run_dir)
    return run_dir
