"""Turning scrapes into series: counter resets, histogram quantiles, the exporter's histogram."""

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from loadwise.analysis import metrics as m
from loadwise.run.collector import parse_exposition
from loadwise.engine.exporter import LocustMetrics
from loadwise.engine.recorder import Recorder


def _snap(t, requests, cpu, buckets, rss=1e8):
    text = [f'http_requests_total{{route="/a",status="200"}} {requests}',
            f'http_requests_total{{route="/a",status="503"}} {requests / 10}',
            f"process_cpu_seconds_total {cpu}", f"process_resident_memory_bytes {rss}",
            "http_requests_in_progress 3"]
    for le, count in buckets.items():
        text.append(f'http_request_duration_seconds_bucket{{route="/a",le="{le}"}} {count}')
    return parse_exposition("\n".join(text) + "\n", t)


def test_rates_quantiles_and_counter_reset():
    snaps = [
        _snap(0, 100, 1.0, {"0.01": 50, "0.1": 90, "+Inf": 100}),
        _snap(5, 600, 3.5, {"0.01": 300, "0.1": 540, "+Inf": 600}),
        _snap(10, 200, 0.5, {"0.01": 100, "0.1": 180, "+Inf": 200}),  # the process restarted
    ]
    rows = m.derive(snaps)
    at = {(r["series"], r["timestamp"]): r["value"] for r in rows}
    assert at[("server_rps", 5)] == pytest.approx((500 + 50) / 5)
    assert at[("server_error_rps", 5)] == pytest.approx(50 / 5)
    assert at[("cpu_cores", 5)] == pytest.approx(0.5)
    assert at[("server_rps", 10)] == pytest.approx((200 + 20) / 5)  # after a reset the new count is the increase
    assert at[("cpu_cores", 10)] == pytest.approx(0.1)
    # 500 new observations: 250 <= 10 ms, 450 <= 100 ms: p50 at 10 ms, p95 in the +Inf bucket -> 100 ms
    assert at[("server_p50_ms", 5)] == pytest.approx(10.0)
    assert at[("server_p95_ms", 5)] == pytest.approx(100.0)
    assert at[("memory_bytes", 0)] == 1e8 and at[("in_flight", 10)] == 3


def test_histogram_quantile_interpolates_like_prometheus():
    buckets = {0.1: 10.0, 0.2: 30.0, 0.4: 40.0, math.inf: 40.0}
    assert m.histogram_quantile(0.5, buckets) == pytest.approx(0.15)
    assert m.histogram_quantile(0.25, buckets) == pytest.approx(0.1)
    assert m.histogram_quantile(0.875, buckets) == pytest.approx(0.3)
    assert m.histogram_quantile(0.9, {0.1: 0.0, math.inf: 0.0}) is None
    assert m.histogram_quantile(0.5, {0.1: 1.0}) is None  # no +Inf bucket: not a histogram


def test_from_prometheus_drops_name_and_non_finite():
    rows = m.from_prometheus("x", [{"metric": {"__name__": "up", "pod": "a"}, "values": [[10, "1"], [12, "NaN"]]}])
    assert rows == [{"timestamp": 10.0, "source": "prometheus", "series": "x", "labels": '{"pod": "a"}', "value": 1.0}]


def test_exporter_histogram_and_counters_follow_the_recorder():
    recorder = Recorder(keep_totals=True)
    for ms in (3, 8, 40, 40, 900):
        recorder.record("GET", "/p/[id]", ms, 10, None, at=100.0)
    recorder.record("GET", "/p/[id]", 2, 0, "boom", at=100.0)
    worker = Recorder()
    worker.record("POST", "/o", 70, 1, None, at=101.0)
    recorder.absorb(worker.drain())
    registry = CollectorRegistry()
    registry.register(LocustMetrics(recorder, users=lambda: 7, workers=lambda: 2))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples}
    get = ("method", "GET"), ("name", "/p/[id]")
    assert samples[("locust_users", ())] == 7 and samples[("locust_workers", ())] == 2
    assert samples[("locust_requests_total", get)] == 6 and samples[("locust_failures_total", get)] == 1
    assert samples[("locust_response_time_seconds_bucket", (("le", "0.005"), *get))] == 2
    assert samples[("locust_response_time_seconds_bucket", (("le", "0.05"), *get))] == 5
    assert samples[("locust_response_time_seconds_bucket", (("le", "+Inf"), *get))] == 6
    assert samples[("locust_response_time_seconds_sum", get)] == pytest.approx(0.993)
    assert samples[("locust_requests_total", (("method", "POST"), ("name", "/o")))] == 1
