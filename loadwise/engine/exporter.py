"""Locust's live metrics for Prometheus, served by the master (or the local runner).

Names follow Prometheus conventions: `locust_users`, `locust_workers`,
`locust_requests_total`, `locust_failures_total` and the histogram
`locust_response_time_seconds` per (method, name), computed from the recorder's
whole-run HDR histograms, so they agree with `intervals.csv` to HDR precision.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator

from gevent.pywsgi import WSGIServer
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from loadwise.engine.recorder import Cell, Recorder

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def bucket_counts(cell: Cell) -> list[tuple[str, float]]:
    """Cumulative counts at each bound (seconds), +Inf last, from the cell's HDR histogram."""
    recorded = [(it.value_iterated_to / 1e6, it.count_at_value_iterated_to) for it in cell.histogram().get_recorded_iterator()]
    values = [v for v, _ in recorded]  # ascending, as the iterator walks the buckets
    below = [0, *itertools.accumulate(c for _, c in recorded)]  # below[i]: counts of the first i buckets
    out = [(f"{bound:g}", float(below[bisect.bisect_right(values, bound)])) for bound in BUCKETS_S]
    out.append(("+Inf", float(cell.requests)))
    return out


class LocustMetrics:
    """A prometheus_client collector reading the recorder and the runner at scrape time."""

    def __init__(self, recorder: Recorder, users: Callable[[], int], workers: Callable[[], int]):
        assert recorder.totals is not None, "the recorder must keep totals for the exporter"
        self.recorder = recorder
        self.users = users
        self.workers = workers

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("locust_users", "Users running now", value=self.users())
        yield GaugeMetricFamily("locust_workers", "Connected Locust workers (0: one local process)", value=self.workers())
        totals = dict(self.recorder.totals or {})
        requests = CounterMetricFamily("locust_requests", "Requests made", labels=["method", "name"])
        failures = CounterMetricFamily("locust_failures", "Requests that failed", labels=["method", "name"])
        latency = HistogramMetricFamily(
            "locust_response_time_seconds", "Response time seen by Locust", labels=["method", "name"]
        )
        for (method, name), cell in sorted(totals.items()):
            requests.add_metric([method, name], cell.requests)
            failures.add_metric([method, name], cell.failures)
            latency.add_metric([method, name], bucket_counts(cell), sum_value=cell.sum_ms / 1000.0)
        yield requests
        yield failures
        yield latency


def serve(collector: LocustMetrics, port: int, host: str = "127.0.0.1") -> WSGIServer:
    """Serve /metrics on host:port inside the Locust process (gevent)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    server = WSGIServer((host, port), make_wsgi_app(registry), log=None)
    server.start()
    return server
