"""Start-up: `loadwise --help` and `loadwise run --help` against `locust --help`.

Every command pays the CLI's start-up, so it must not import what only some commands use
(pandas, numpy, matplotlib, scipy, Locust, the Kubernetes client). Prints the median wall
time and peak RSS of 5 runs of each, and the ratios to Locust's, all measured in this run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
RUNS = 5


def measure(argv: list[str]) -> tuple[float, float]:
    """Median seconds and median peak RSS (MiB) of RUNS runs of argv."""
    seconds, rss = [], []
    for _ in range(RUNS):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)  # its own peak RSS, not ours
        seconds.append(time.perf_counter() - start)
        rss.append(usage.ru_maxrss / 1024)  # Linux reports KiB
        if status != 0:
            raise SystemExit(f"{' '.join(argv)} exited with status {status}")
    return statistics.median(seconds), statistics.median(rss)


def main() -> None:
    locust = measure([str(BIN / "locust"), "--help"])
    print(f"startup: locust --help: median {locust[0]:.3f} s, {locust[1]:.0f} MiB")
    for args in (["--help"], ["run", "--help"], ["gate", "--help"]):
        t, m = measure([str(BIN / "loadwise"), *args])
        print(f"startup: loadwise {' '.join(args)}: median {t:.3f} s, {m:.0f} MiB "
              f"(ratio to locust --help: time {t / locust[0]:.2f}, memory {m / locust[1]:.2f})")


if __name__ == "__main__":
    main()
