"""The recorder and the HDR histograms it stores: exactness, merging, intervals, errors."""

import numpy as np
import pytest

from loadwise.analysis import histogram
from loadwise.engine.recorder import Recorder


def exact_percentile(values: np.ndarray, q: float) -> float:
    # HDR reports the value at which the cumulative count reaches q%: nearest rank.
    return float(np.percentile(values, q, method="inverted_cdf"))


def test_percentiles_from_stored_histograms_within_one_percent_of_exact():
    rng = np.random.default_rng(7)
    # Heavy-tailed, like real latencies: lognormal body plus a slow tail.
    values = np.concatenate([rng.lognormal(3.0, 0.6, 40_000), rng.uniform(200, 3000, 400)])
    recorder = Recorder(interval_s=5)
    for i, value in enumerate(values):
        recorder.record("GET", "/x", float(value), 10, None, at=1000.0 + i * 0.001)  # spans 9 intervals
    rows = recorder.close(before=float("inf"))
    assert len(rows) == 9
    assert sum(r["requests"] for r in rows) == len(values)
    merged = histogram.merge(r["hdr"] for r in rows)
    assert merged.get_total_count() == len(values)
    for q in (50, 90, 95, 99, 99.9):
        got = histogram.percentile_ms(merged, q)
        want = exact_percentile(values, q)
        assert abs(got - want) / want < 0.01, (q, got, want)


def test_intervals_align_to_wall_clock_and_close_only_when_over():
    recorder = Recorder(interval_s=5)
    recorder.record("GET", "/a", 10, 1, None, at=1002.0)
    recorder.record("GET", "/a", 20, 1, None, at=1004.9)
    recorder.record("GET", "/a", 30, 1, None, at=1005.0)
    assert recorder.close(before=1004.0) == []
    rows = recorder.close(before=1005.0)
    assert [(r["start"], r["requests"]) for r in rows] == [("1970-01-01T00:16:40Z", 2)]
    assert rows[0]["mean_ms"] == 15.0 and rows[0]["max_ms"] == 20.0
    assert [r["requests"] for r in recorder.close(before=2000.0)] == [1]


def test_worker_drain_then_master_absorb_equals_recording_in_one_place():
    rng = np.random.default_rng(1)
    values = rng.exponential(20, 3000)
    alone, worker_a, worker_b, master = Recorder(), Recorder(), Recorder(), Recorder()
    for i, value in enumerate(values):
        at = 500.0 + i * 0.01
        alone.record("GET", "/y", value, 5, None, at)
        (worker_a if i % 2 else worker_b).record("GET", "/y", value, 5, None, at)
    sent = master.absorb(worker_a.drain()) + master.absorb(worker_b.drain())
    assert sent == len(values)
    assert worker_a.cells == {} and worker_b.cells == {}
    want = alone.close(float("inf"))
    got = master.close(float("inf"))
    for w, g in zip(want, got, strict=True):
        assert (w["start"], w["requests"], w["bytes"], w["p95_ms"], w["p99_ms"]) == (
            g["start"], g["requests"], g["bytes"], g["p95_ms"], g["p99_ms"]
        )
        assert w["mean_ms"] == pytest.approx(g["mean_ms"])


def test_errors_grouped_by_endpoint_and_message_and_redacted():
    recorder = Recorder()
    for _ in range(3):
        recorder.record("GET", "/login", 5, 0, "HTTPError('401 for url /login?token=s3cr3t')", at=10.0)
    recorder.record("POST", "/orders", 5, 0, "ConnectionRefusedError(111)", at=10.0)
    rows = recorder.error_rows()
    assert rows[0]["count"] == 3 and rows[0]["name"] == "/login"
    assert "s3cr3t" not in rows[0]["error"] and "[REDACTED]" in rows[0]["error"]
    assert rows[1] == {"method": "POST", "name": "/orders", "error": "ConnectionRefusedError(111)", "count": 1}
    closed = recorder.close(float("inf"))
    assert {r["name"]: r["failures"] for r in closed} == {"/login": 3, "/orders": 1}


def test_users_are_averaged_over_the_interval():
    recorder = Recorder(interval_s=5)
    for t, users in ((100.0, 10), (101.0, 10), (102.0, 20), (103.0, 20)):
        recorder.sample_users(users, t)
    recorder.record("GET", "/z", 1, 0, None, at=101.0)
    assert recorder.close(float("inf"))[0]["users"] == 15.0


def test_fast_merge_matches_hdrhistogram_exactly():
    rng = np.random.default_rng(11)
    encoded, reference = [], histogram.new_histogram()
    for n in range(40):
        h = histogram.new_histogram()
        for v in np.concatenate([rng.lognormal(1 + n % 4, 0.8, 300), rng.uniform(1000, 90_000, 3)]):
            histogram.record_ms(h, float(v))
        encoded.append(histogram.encode(h))
        reference.add(h)
    counts = histogram.merged_counts(encoded)
    assert counts.sum() == reference.get_total_count()
    assert np.array_equal(counts, np.frombuffer(reference.counts, dtype=np.int64, count=reference.counts_len))
    qs = [0.0001, 1, 25, 50, 90, 95, 99, 99.9, 99.99, 100]
    fast = histogram.percentiles_from_counts(counts, qs)
    assert fast == [reference.get_value_at_percentile(q) / 1000.0 for q in qs]
    assert np.isnan(histogram.percentiles_from_counts(histogram.merged_counts([]), [50])[0])


def test_vectorized_bucketing_matches_hdrhistogram():
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.lognormal(2, 2, 20_000), [0.0, 0.0004, 1.0, 2.047, 2.048, 1e7, 3.7e9]])
    reference = histogram.new_histogram()
    for v in values:
        histogram.record_ms(reference, float(v))
    dense = np.frombuffer(reference.counts, dtype=np.int64, count=reference.counts_len)
    assert np.array_equal(histogram.counts_of_ms(values), dense)



def test_no_percentile_above_the_slowest_response_or_below_the_fastest():
    """HDR reports a bucket's highest equivalent value: 3.636 ms alone reads back as 3.637 ms.
    Every percentile is kept within the recorded [min, max], per interval, over merged
    intervals (the summary), and the minimum travels from workers to the master."""
    import pandas as pd

    from loadwise.analysis.summary import stats_of
    from loadwise.engine.recorder import Cell

    hdr = histogram.new_histogram()
    histogram.record_ms(hdr, 3.636)
    assert histogram.percentile_ms(hdr, 99) > 3.636  # the premise
    recorder = Recorder(5.0)
    for i in range(600):  # past the sparse limit, so the interval holds a real HDR histogram
        recorder.record("GET", "/x", 3.636, 10, None, 1_800_000_000.0 + i / 1000)
    [row] = recorder.close(1_800_000_010.0)
    assert all(row[k] <= row["max_ms"] == 3.636 for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms"))
    overall = stats_of(pd.DataFrame([row]), 5.0)
    assert overall.p99_ms <= overall.max_ms == 3.636
    cell = Cell()
    for value in (3.0, 3.2, 3.5):
        cell.add(value, 1, False)
    wired = Cell.from_wire(cell.to_wire())
    assert (wired.min_ms, wired.max_ms) == (3.0, 3.5)


def test_bulk_recording_counts_exactly_as_record_value():
    """record_many_ms counts a bulk with numpy into the histogram's own array: the same buckets,
    total, minimum and maximum (clamped at both ends) as HdrHistogram's record_value one by one."""
    import random
    from array import array

    from loadwise.analysis import histogram

    rng = random.Random(7)
    values = array("d", [rng.expovariate(1 / 3.0) for _ in range(5000)] + [0.0, 0.0004, 4e9, 1234.5678])
    one, bulk = histogram.new_histogram(), histogram.new_histogram()
    for value in values:
        histogram.record_ms(one, value)
    histogram.record_many_ms(bulk, values[:100])
    histogram.record_many_ms(bulk, values[100:])
    assert list(one.counts) == list(bulk.counts)
    assert (one.total_count, one.min_value, one.max_value) == (bulk.total_count, bulk.min_value, bulk.max_value)
    assert histogram.encode(one) == histogram.encode(bulk)
