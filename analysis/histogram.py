"""HDR histograms of response times: one precision and unit for the whole codebase.

Values are recorded in microseconds with 3 significant digits (0.1 % relative error)
from 1 us to 1 hour, so any percentile recomputed from merged histograms is exact to
that precision, in local and distributed runs alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3

PERCENTILES = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record_ms(histogram: HdrHistogram, response_time_ms: float) -> None:
    # Clamp rather than drop: a request slower than an hour still counts as a request.
    value = min(max(int(round(response_time_ms * 1000.0)), LOWEST_US), HIGHEST_US)
    histogram.record_value(value)


def encode(histogram: HdrHistogram) -> str:
    """Compressed, base64 text form (HdrHistogram's standard encoding)."""
    return histogram.encode().decode("ascii")


def decode(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.encode("ascii"))


def merge(encoded: Iterable[str]) -> HdrHistogram:
    merged = new_histogram()
    for text in encoded:
        if text:
            merged.add(decode(text))
    return merged


def percentile_ms(histogram: HdrHistogram, percentile: float) -> float:
    if histogram.get_total_count() == 0:
        return float("nan")
    return histogram.get_value_at_percentile(percentile) / 1000.0


def percentiles_ms(histogram: HdrHistogram) -> dict[str, float]:
    return {key: percentile_ms(histogram, q) for key, q in PERCENTILES.items()}
