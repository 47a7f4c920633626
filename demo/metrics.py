"""Prometheus metrics of the demo target, correct across uvicorn worker processes.

prometheus_client's multiprocess mode sums counters and histograms over workers; process
CPU and memory are summed here over the live worker processes, so `/metrics` describes
the whole "replica set" whichever worker answers the scrape.
PROMETHEUS_MULTIPROC_DIR must be set before this module is imported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

REQUESTS = Counter("http_requests_total", "HTTP requests served", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds", "Time to serve a request", ["method", "route"], buckets=LATENCY_BUCKETS
)
IN_PROGRESS = Gauge("http_requests_in_progress", "Requests being served", multiprocess_mode="livesum")
WORKERS = Gauge("demo_workers", "Worker processes serving traffic", multiprocess_mode="livesum")
CACHE = Counter("demo_cache_requests_total", "Product cache lookups", ["result"])

_PID_IN_FILENAME = re.compile(r"_(\d+)\.db$")


class WorkerProcessCollector:
    """process_* metrics summed over the live processes that wrote multiprocess files."""

    def __init__(self, multiproc_dir: str):
        self.multiproc_dir = Path(multiproc_dir)

    def _live_pids(self) -> set[int]:
        pids = set()
        for path in self.multiproc_dir.glob("*.db"):
            match = _PID_IN_FILENAME.search(path.name)
            if match and Path(f"/proc/{match.group(1)}").exists():
                pids.add(int(match.group(1)))
        return pids

    def collect(self) -> Iterator[Metric]:
        totals: dict[str, float] = {}
        for pid in self._live_pids():
            for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():
                for sample in family.samples:
                    totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        cpu = CounterMetricFamily("process_cpu_seconds", "CPU seconds of all worker processes")
        cpu.add_metric([], totals.get("process_cpu_seconds_total", 0.0))
        yield cpu
        rss = GaugeMetricFamily("process_resident_memory_bytes", "Resident memory of all worker processes")
        rss.add_metric([], totals.get("process_resident_memory_bytes", 0.0))
        yield rss
        fds = GaugeMetricFamily("process_open_fds", "Open file descriptors of all worker processes")
        fds.add_metric([], totals.get("process_open_fds", 0.0))
        yield fds


def exposition() -> bytes:
    """The text exposition of every worker's metrics combined."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    registry.register(WorkerProcessCollector(directory))
    return generate_latest(registry)
