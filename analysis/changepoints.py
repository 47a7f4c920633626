"""Change points in a run history: E-Divisive means (Matteson & James, 2014), as Apache
Otava (Hunter) and MongoDB use it, with a permutation test for significance.

`change_points` splits a series recursively at the point that maximises the energy
divergence between the two sides and keeps a split when a permutation test says it is
significant. `newest_point` then asks whether the newest point leaves the current regime
(the points after the last change point) in the worse direction: outside the regime's 95 %
prediction interval and worse by at least the minimum effect. A single point cannot be a
regime of its own by the divergence test alone, so the newest point is judged against the
regime's spread instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from loadwise.analysis.gate_settings import MIN_EFFECT

MIN_SIZE = 3  # smallest regime E-Divisive may cut out of the history


def _divergence(x: np.ndarray, min_size: int) -> tuple[int, float]:
    """Best split τ of x and its statistic Q (alpha = 1)."""
    n = len(x)
    d = np.abs(x[:, None] - x[None, :])
    best_tau, best_q = -1, -math.inf
    # cumulative sums of distances inside the left part and the right part
    for tau in range(min_size, n - min_size + 1):
        left, right = d[:tau, :tau], d[tau:, tau:]
        between = d[:tau, tau:].mean()
        within_l = left.sum() / (tau * (tau - 1)) if tau > 1 else 0.0
        within_r = right.sum() / ((n - tau) * (n - tau - 1)) if n - tau > 1 else 0.0
        q = (tau * (n - tau) / n) * (2 * between - within_l - within_r)
        if q > best_q:
            best_tau, best_q = tau, q
    return best_tau, best_q


def change_points(series: np.ndarray | list[float], alpha: float = 0.01, permutations: int = 499,
                  min_size: int = MIN_SIZE, seed: int = 0) -> list[int]:  # fmt: skip
    """Indices where a new regime starts, sorted."""
    x = np.asarray(series, dtype=float)
    rng = np.random.default_rng(seed)
    found: list[int] = []

    def split(lo: int, hi: int) -> None:
        segment = x[lo:hi]
        if len(segment) < 2 * min_size:
            return
        tau, q = _divergence(segment, min_size)
        if tau < 0:
            return
        exceed = sum(_divergence(rng.permutation(segment), min_size)[1] >= q for _ in range(permutations))
        if (exceed + 1) / (permutations + 1) < alpha:
            found.append(lo + tau)
            split(lo, lo + tau)
            split(lo + tau, hi)

    split(0, len(x))
    return sorted(found)


@dataclass
class NewestPoint:
    value: float
    regime_start: int
    regime_mean: float
    regime_size: int
    limit: float | None  # edge of the prediction interval in the worse direction
    change: float | None  # newest / regime mean - 1
    worse_regime: bool


def newest_point(series: np.ndarray | list[float], higher_is_worse: bool = True, min_effect: float = MIN_EFFECT,
                 confidence: float = 0.95) -> NewestPoint:  # fmt: skip
    x = np.asarray(series, dtype=float)
    history, newest = x[:-1], float(x[-1])
    cps = change_points(history) if len(history) >= 2 * MIN_SIZE else []
    start = cps[-1] if cps else 0
    regime = history[start:]
    mean = float(regime.mean()) if len(regime) else float("nan")
    if len(regime) < 3 or not math.isfinite(mean):
        return NewestPoint(newest, start, mean, len(regime), None, None, False)
    sd = float(regime.std(ddof=1))
    t = stats.t.ppf(confidence, len(regime) - 1)  # one-sided: only the worse direction fails a gate
    margin = t * sd * math.sqrt(1 + 1 / len(regime))
    limit = mean + margin if higher_is_worse else mean - margin
    change = newest / mean - 1 if mean else None
    outside = newest > limit if higher_is_worse else newest < limit
    big = change is not None and (change >= min_effect if higher_is_worse else change <= -min_effect)
    return NewestPoint(newest, start, mean, len(regime), limit, change, bool(outside and big))
