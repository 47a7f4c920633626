"""The CI gate on real runs: false alarms between same-build runs, and the smallest
injected slowdown it catches.

Ten runs of `loadwise run browse -u 20 -r 20 -t 12s` against one demo target give 90
ordered same-build pairs, judged with the gate's default settings (goal: at most 1 %
false alarms). Then runs with `--inject-latency /products/{id}=MS` at growing MS, ten per
level, are judged against the first same-build run: the smallest MS caught in 9 of 10 is
printed. About 15 minutes on 2 cores; loopback only.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import tempfile
from pathlib import Path

from loadwise.analysis.gate_settings import GateSettings
from loadwise.analysis.regression import REGRESSION, compare_runs
from loadwise.analysis.rundir import RunDir
from loadwise.analysis.windows import select
from loadwise.run.demo_target import DemoTarget

RUNS = 10
LEVELS_MS = (2, 5, 10, 20, 40)
FAST = GateSettings(resamples=500)  # the bootstrap's verdicts settle well before the CLI's 1000
ROUTE, ENDPOINT = "/products/{id}", "GET /products/[id]"


def _runs(out: Path, count: int, extra: list[str]) -> list[str]:
    paths = []
    with DemoTarget(rows=2000, extra_args=extra) as shop:
        for _ in range(count):
            proc = subprocess.run([sys.executable, "-m", "loadwise", "run", "browse", "--host", shop.url, "--users", "20",
                                   "--spawn-rate", "20", "--duration", "12s", "--interval", "1", "--out", str(out)],
                                  capture_output=True, text=True, timeout=120)  # fmt: skip
            if proc.returncode != 0:
                raise SystemExit(f"run failed: {proc.stderr.strip().splitlines()[-1:]}")
            paths.append(proc.stdout.strip().splitlines()[-1])
    return paths


def _window(path: str):
    run = RunDir(path)
    return select(run.read_info(), run.read_intervals(), "all", 2.0)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        same = [_window(p) for p in _runs(Path(tmp) / "same", RUNS, [])]
        pairs = list(itertools.permutations(range(RUNS), 2))
        alarms = sum(any(c.decision == REGRESSION for c in compare_runs(same[i], same[j], FAST)) for i, j in pairs)
        print(f"gate: {alarms} of {len(pairs)} same-build pairs failed ({alarms / len(pairs):.1%} false alarms; goal <= 1%)")
        for ms in LEVELS_MS:
            slow = [_window(p) for p in _runs(Path(tmp) / f"slow{ms}", RUNS, ["--inject-latency", f"{ROUTE}={ms}"])]
            caught = sum(any(c.decision == REGRESSION and c.endpoint == ENDPOINT for c in compare_runs(same[0], run, FAST))
                         for run in slow)  # fmt: skip
            print(f"gate: +{ms} ms on {ENDPOINT} caught in {caught} of {RUNS} runs")
            if caught >= 9:
                print(f"gate: smallest injected latency caught in 9 of 10 runs: {ms} ms")
                break


if __name__ == "__main__":
    main()
