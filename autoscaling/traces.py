"""Traffic traces to replay through the HPA simulator: requests/s as a function of time."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from loadwise.analysis.csvinput import CsvInputError, read_timestamped
from loadwise.errors import LoadwiseError

Trace = Callable[[float], float]


class TraceError(LoadwiseError, ValueError):
    pass


@dataclass
class NamedTrace:
    name: str
    rps: Trace
    duration_s: float
    peak_rps: float


def diurnal(peak_rps: float, duration_s: float = 24 * 3600, trough: float = 0.2) -> NamedTrace:
    """A day: trough at night, peak in the afternoon."""
    low = peak_rps * trough

    def rps(t: float) -> float:
        return low + (peak_rps - low) * (1 - math.cos(2 * math.pi * t / duration_s)) / 2

    return NamedTrace("diurnal", rps, duration_s, peak_rps)


def spike(peak_rps: float, duration_s: float = 3600, factor: float = 3.0, rise_s: float = 60.0, at_s: float = 1200,
          hold_s: float = 600) -> NamedTrace:  # fmt: skip
    """Steady traffic that jumps `factor`-fold within `rise_s`, holds, then falls back."""
    base = peak_rps / factor

    def rps(t: float) -> float:
        if t < at_s or t > at_s + rise_s + hold_s + rise_s:
            return base
        if t < at_s + rise_s:
            return base + (peak_rps - base) * (t - at_s) / rise_s
        if t <= at_s + rise_s + hold_s:
            return peak_rps
        return peak_rps - (peak_rps - base) * (t - at_s - rise_s - hold_s) / rise_s

    return NamedTrace("spike", rps, duration_s, peak_rps)


def ramp(peak_rps: float, duration_s: float = 3600, start: float = 0.1) -> NamedTrace:
    return NamedTrace("ramp", lambda t: peak_rps * (start + (1 - start) * min(t / duration_s, 1)), duration_s, peak_rps)


def from_series(name: str, seconds: np.ndarray, values: np.ndarray) -> NamedTrace:
    if len(seconds) < 2:
        raise TraceError(f"{name}: a trace needs at least two points")
    order = np.argsort(seconds)
    t, v = seconds[order] - seconds[order][0], values[order]
    return NamedTrace(name, lambda x: float(np.interp(x, t, v)), float(t[-1]), float(v.max()))


def from_csv(path: Path) -> NamedTrace:
    """A CSV of `timestamp,rps` (seconds, or ISO 8601 times) — e.g. a request-rate series from Prometheus."""
    try:
        frame = read_timestamped(path, ("rps",), "columns timestamp and rps")
    except CsvInputError as exc:
        raise TraceError(str(exc)) from None
    stamps = frame["timestamp"]
    values = pd.to_numeric(frame["rps"], errors="coerce")
    if stamps.isna().any() or values.isna().any() or (values < 0).any():
        raise TraceError(f"{path}: timestamps and rps must be numbers (rps >= 0)")
    return from_series(path.name, stamps.to_numpy(float), values.to_numpy(float))
