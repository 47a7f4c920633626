"""HDR histograms of response times: one precision and unit for the whole codebase.

Values are recorded in microseconds with 3 significant digits (0.1 % relative error)
from 1 us to 1 hour, so any percentile recomputed from merged histograms is exact to
that precision, in local and distributed runs alike.
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence

from typing import TYPE_CHECKING

from hdrh.histogram import HdrHistogram

from loadwise.errors import LoadwiseError

if TYPE_CHECKING:
    import numpy as np

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


BULK_RECORD = 64  # from this many values on, record_many_ms counts buckets with numpy


def record_many_ms(histogram: HdrHistogram, response_times_ms: Sequence[float]) -> None:
    """record_ms for many values at once. HdrHistogram's Python record_value is the cost (3 ms
    for 6,000 values): a bulk is counted into buckets with numpy (indices_of_ms, the same index
    record_value computes) and added to the histogram's own counts array in place."""
    if len(response_times_ms) < BULK_RECORD:
        for value, count in Counter(int(round(ms * 1000.0)) for ms in response_times_ms).items():
            histogram.record_value(min(max(value, LOWEST_US), HIGHEST_US), count)
        return
    import numpy as np

    values = np.asarray(response_times_ms, dtype=float)
    counts = np.ctypeslib.as_array(histogram.counts)
    added = np.bincount(indices_of_ms(values), minlength=len(counts))
    counts += added[: len(counts)].astype(counts.dtype)
    histogram.total_count += len(values)
    lowest, highest = (min(max(int(round(ms * 1000.0)), LOWEST_US), HIGHEST_US) for ms in (values.min(), values.max()))
    histogram.min_value = min(histogram.min_value, lowest)
    histogram.max_value = max(histogram.max_value, highest)


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


def percentiles_ms(histogram: HdrHistogram, min_ms: float | None = None, max_ms: float | None = None) -> dict[str, float]:
    """The standard percentiles, kept within the recorded [min, max] (see percentiles_from_counts)."""
    values = {key: percentile_ms(histogram, q) for key, q in PERCENTILES.items()}
    if max_ms is not None:
        values = {key: min(v, max_ms) for key, v in values.items()}
    if min_ms is not None:
        values = {key: max(v, min_ms) for key, v in values.items()}
    return values


# -- fast merging -------------------------------------------------------------------------
# A report over an hour of 5 s intervals and 50 endpoints merges 36,000 histograms;
# building an HdrHistogram object for each is too slow. These functions read the same
# standard encoding (base64, zlib, 40-byte payload header, ZigZag LEB128 counts) straight
# into numpy count arrays and compute percentiles exactly as HdrHistogram does.
# numpy is imported inside them: a Locust worker only records and encodes, and so runs
# without it (about 15 MB less per worker).

_PAYLOAD_HEADER = struct.Struct(">IIIIqqd")
_V2_ENCODING_COOKIE_BASE = 0x1C849303
_TEMPLATE = new_histogram()
COUNTS_LEN = _TEMPLATE.counts_len
_SUB_BUCKET_HALF_COUNT_MAGNITUDE = _TEMPLATE.sub_bucket_half_count_magnitude
_SUB_BUCKET_HALF_COUNT = _TEMPLATE.sub_bucket_half_count
_UNIT_MAGNITUDE = _TEMPLATE.unit_magnitude


class HistogramError(LoadwiseError, ValueError):
    """A stored histogram that cannot be decoded."""


def sparse_counts(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(bucket indices, counts) of one encoded histogram of this module's precision."""
    try:
        raw = base64.b64decode(str(text), validate=True)
        payload = zlib.decompress(raw[8:])
        _PAYLOAD_HEADER.unpack_from(payload)
    except (ValueError, zlib.error, struct.error) as exc:
        raise HistogramError(f"a stored HDR histogram is corrupt ({exc})") from None
    return _sparse(text, payload)


def _sparse(text: str, payload: bytes) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    cookie, length, offset, digits, lowest, highest, _ = _PAYLOAD_HEADER.unpack_from(payload)
    if (cookie & ~0xF0) != _V2_ENCODING_COOKIE_BASE or (digits, lowest, highest, offset) != (
        SIGNIFICANT_DIGITS, LOWEST_US, HIGHEST_US, 0
    ):
        h = decode(text)  # another precision or layout: let the library read it
        dense = np.frombuffer(h.counts, dtype=np.int64, count=h.counts_len)
        idx = np.flatnonzero(dense)
        return idx, dense[idx]
    data = np.frombuffer(payload, dtype=np.uint8, offset=_PAYLOAD_HEADER.size, count=length)
    ends = np.flatnonzero(data < 0x80)
    starts = np.concatenate(([0], ends[:-1] + 1))
    sizes = ends - starts + 1
    if len(sizes) and sizes.max() > 8:  # a 9-byte varint (count >= 2**56) uses all 8 bits of its last byte
        h = decode(text)
        dense = np.frombuffer(h.counts, dtype=np.int64, count=h.counts_len)
        idx = np.flatnonzero(dense)
        return idx, dense[idx]
    shifts = (np.arange(len(data)) - np.repeat(starts, sizes)) * 7
    values = np.add.reduceat((data & 0x7F).astype(np.uint64) << shifts.astype(np.uint64), starts)
    signed = (values >> np.uint64(1)).astype(np.int64) ^ -(values & np.uint64(1)).astype(np.int64)
    steps = np.where(signed < 0, -signed, 1)
    index = np.cumsum(steps) - steps
    keep = signed > 0
    return index[keep], signed[keep]


def merged_counts(encoded: Iterable[str]) -> np.ndarray:
    """Dense bucket counts of the merge of many encoded histograms."""
    return merge_sparse([sparse_counts(text) for text in encoded if text])


Sparse = tuple["np.ndarray", "np.ndarray"]


def merge_sparse(parts: list[Sparse]) -> np.ndarray:
    """Dense bucket counts of the merge of already decoded (index, count) pairs."""
    import numpy as np

    if not parts:
        return np.zeros(COUNTS_LEN, dtype=np.int64)
    index = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    return np.bincount(index, weights=counts, minlength=COUNTS_LEN).astype(np.int64)


def _highest_equivalent_us(index: np.ndarray) -> np.ndarray:
    import numpy as np

    bucket = (index >> _SUB_BUCKET_HALF_COUNT_MAGNITUDE) - 1
    sub_bucket = (index & (_SUB_BUCKET_HALF_COUNT - 1)) + _SUB_BUCKET_HALF_COUNT
    low = bucket < 0
    sub_bucket = np.where(low, sub_bucket - _SUB_BUCKET_HALF_COUNT, sub_bucket)
    bucket = np.where(low, 0, bucket)
    value = sub_bucket << (bucket + _UNIT_MAGNITUDE)
    return value + (1 << (bucket + _UNIT_MAGNITUDE)) - 1


def percentiles_from_counts(counts: np.ndarray, percentiles: Iterable[float], max_ms: float | None = None) -> list[float]:
    """Values (ms) at each percentile, as HdrHistogram.get_value_at_percentile gives them,
    but never above `max_ms`, the slowest response recorded: HDR reports the highest value
    its bucket stands for, up to 0.1 % above any response in it."""
    import numpy as np

    qs = list(percentiles)
    total = int(counts.sum())
    if total == 0:
        return [float("nan")] * len(qs)
    cumulative = np.cumsum(counts)
    targets = np.maximum((np.asarray(qs) * total / 100.0 + 0.5).astype(np.int64), 1)
    index = np.searchsorted(cumulative, targets, side="left")
    values = [float(v) / 1000.0 for v in _highest_equivalent_us(index)]
    return values if max_ms is None or not math.isfinite(max_ms) else [min(v, max_ms) for v in values]


def indices_of_ms(values_ms: np.ndarray) -> np.ndarray:
    """HDR bucket index of each value (ms), as HdrHistogram.record_value would count it."""
    import numpy as np

    us = np.clip(np.rint(np.asarray(values_ms, dtype=float) * 1000.0), LOWEST_US, HIGHEST_US).astype(np.int64)
    sub_bucket_mask = (_TEMPLATE.sub_bucket_count - 1) << _UNIT_MAGNITUDE
    bit_length = np.frexp((us | sub_bucket_mask).astype(np.float64))[1].astype(np.int64)  # exact below 2**53
    bucket = bit_length - _UNIT_MAGNITUDE - (_SUB_BUCKET_HALF_COUNT_MAGNITUDE + 1)
    sub_bucket = us >> (bucket + _UNIT_MAGNITUDE)
    return ((bucket + 1) << _SUB_BUCKET_HALF_COUNT_MAGNITUDE) + (sub_bucket - _SUB_BUCKET_HALF_COUNT)


def counts_of_ms(values_ms: np.ndarray) -> np.ndarray:
    """Dense bucket counts of raw values (ms): the histogram of them, without HdrHistogram objects."""
    import numpy as np

    return np.bincount(indices_of_ms(values_ms), minlength=COUNTS_LEN).astype(np.int64)


def bucket_upper_us(index: np.ndarray) -> np.ndarray:
    """The highest value (µs) each bucket index stands for."""
    import numpy as np

    return _highest_equivalent_us(np.asarray(index, dtype=np.int64))


def mean_from_counts(counts: np.ndarray) -> float:
    """Mean (ms) of dense bucket counts, each bucket at its highest value (within HDR precision)."""
    import numpy as np

    total = int(counts.sum())
    if total == 0:
        return float("nan")
    index = np.nonzero(counts)[0]
    return float((bucket_upper_us(index) * counts[index]).sum()) / total / 1000.0
