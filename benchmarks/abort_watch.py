"""What `--abort-on` costs the process that judges it (a local runner or the master), per second.

Every second the watch decodes the intervals that closed (one row per endpoint) and judges each
rule over its window, reading the ended-but-open cells too (a master keeps 7 s of them open).
Synthetic: 50 endpoints, 100 requests each a second, a 30 s window; medians of 20 judgements.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from loadwise.analysis.thresholds import parse_abort
from loadwise.engine.abort import AbortWatch
from loadwise.engine.recorder import Recorder

ENDPOINTS, PER_SECOND, WINDOW_S, OPEN_S = 50, 100, 30, 7


def main() -> None:
    rng = np.random.default_rng(1)
    start = 1_000_000.0
    recorder = Recorder(1.0)
    for second in range(WINDOW_S + OPEN_S):
        for e in range(ENDPOINTS):
            for i in range(PER_SECOND):
                recorder.record("GET", f"/e{e}", float(rng.exponential(20)), 10, None, start + second + i / PER_SECOND)
    rows = recorder.close(start + WINDOW_S)
    watch = AbortWatch([parse_abort(f"p95<500ms over {WINDOW_S}s"), parse_abort("error_rate<1%")], 1.0)
    watch.start(start)
    began = time.perf_counter()
    watch.add_rows(rows)
    per_row_ms = (time.perf_counter() - began) * 1000 / len(rows)
    judged = []
    for _ in range(20):
        began = time.perf_counter()
        watch.judge(start + WINDOW_S + OPEN_S, [recorder])
        judged.append((time.perf_counter() - began) * 1000)
    print(f"abort watch: {ENDPOINTS} endpoints, {WINDOW_S} closed + {OPEN_S} open 1 s intervals, 2 rules")
    print(f"  reading a closed row {per_row_ms:.2f} ms (x {ENDPOINTS} a second: {per_row_ms * ENDPOINTS:.0f} ms)")
    print(f"  one judgement: median {statistics.median(judged):.1f} ms (min {min(judged):.1f}, max {max(judged):.1f})")
    print(f"  per second of run: about {per_row_ms * ENDPOINTS + statistics.median(judged):.0f} ms of the judging process's CPU")


if __name__ == "__main__":
    main()
