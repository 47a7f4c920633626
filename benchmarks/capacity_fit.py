"""Fitting 1,000 runs' step data (model selection: linear, Amdahl and USL each) — prints the time."""

from __future__ import annotations

import statistics
import time

import numpy as np

from loadwise.capacity.models import select_model

RUNS = 1000


def main() -> None:
    rng = np.random.default_rng(3)
    n = np.array([10, 20, 30, 40, 50, 60, 70, 80], dtype=float)
    datasets = []
    for _ in range(RUNS):
        lam, sigma, kappa = rng.uniform(20, 200), rng.uniform(0.0, 0.1), rng.uniform(0.0, 0.001)
        x = lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1)) * (1 + rng.normal(0, 0.03, len(n)))
        datasets.append(x)
    times = []
    for round_ in range(3):
        started = time.perf_counter()
        for x in datasets:
            select_model(n, x)
        times.append(time.perf_counter() - started)
        print(f"  round {round_ + 1}: {times[-1]:.2f} s", flush=True)
    median = statistics.median(times)
    print(f"capacity fits: {RUNS} runs x 8 steps, 3 models each: median {median:.2f} s "
          f"({1000 * median / RUNS:.2f} ms per run; goal < 5 s: {'met' if median < 5 else 'NOT met'})")


if __name__ == "__main__":
    main()
