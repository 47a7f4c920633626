"""Miss-ratio curves: exact (Mattson) for 1 million requests and SHARDS at 1 % for 10
million, each timed, with SHARDS's error against the exact curve of the same trace; and
the exact curve in bytes for the 1 million requests (sizes per key)."""

from __future__ import annotations

import time

import numpy as np

from loadwise.analysis.cache.mrc import byte_mrc, exact_mrc, shards_mrc, zipf_trace


def main() -> None:
    small = zipf_trace(1_000_000, 100_000, 0.8, seed=1)
    started = time.perf_counter()
    exact_small = exact_mrc(small)
    t_exact = time.perf_counter() - started
    print(f"exact MRC, 1M requests / 100k keys: {t_exact:.2f} s (goal < 10 s: {'met' if t_exact < 10 else 'NOT met'})")
    sizes = np.random.default_rng(3).integers(100, 10_000, 100_000)[small]  # one size per key
    started = time.perf_counter()
    in_bytes = byte_mrc(small, sizes)
    t_bytes = time.perf_counter() - started
    print(f"exact byte MRC, 1M requests / 100k keys: {t_bytes:.2f} s ({t_bytes / t_exact:.1f}x the entry curve; "
          f"{len(in_bytes.sizes)} distinct sizes on the curve)")
    big = zipf_trace(10_000_000, 1_000_000, 0.8, seed=2)
    started = time.perf_counter()
    sampled = shards_mrc(big, rate=0.01)
    t_shards = time.perf_counter() - started
    print(f"SHARDS 1% MRC, 10M requests / 1M keys: {t_shards:.2f} s (goal < 10 s: {'met' if t_shards < 10 else 'NOT met'})")
    exact_big = exact_mrc(big)
    grid = np.linspace(1, exact_big.sizes[-1], 200)
    mae = float(np.mean([abs(exact_big.at(s) - sampled.at(s)) for s in grid]))
    small_grid = np.linspace(1, exact_small.sizes[-1], 200)
    mae_small = float(np.mean([abs(exact_small.at(s) - shards_mrc(small, 0.01).at(s)) for s in small_grid]))
    print(f"SHARDS mean absolute error against exact: {mae:.4f} on 10M requests (goal <= 0.01: {'met' if mae <= 0.01 else 'NOT met'}), "
          f"{mae_small:.4f} on 1M (evenly spaced sizes)")  # fmt: skip


if __name__ == "__main__":
    main()
