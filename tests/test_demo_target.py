"""The demo shop, started for real with `python -m demo` on a free loopback port."""

import json
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import served_requests
from prometheus_client.parser import text_string_to_metric_families

from loadwise.demo_target import DemoTarget


def get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def post(url: str, body: dict) -> tuple[int, object]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def median_ms(url: str, n: int = 15) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        get(url)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def test_every_route_answers_and_is_counted(target):
    before = served_requests(target)
    assert get(f"{target.url}/health") == (200, {"status": "ok"})
    status, products = get(f"{target.url}/products?category=books")
    assert status == 200 and products and all(p["category"] == "books" for p in products)
    assert [p["price"] for p in products] == sorted(p["price"] for p in products)
    assert get(f"{target.url}/products/7")[1]["id"] == 7
    assert get(f"{target.url}/products/999999")[0] == 404
    status, found = get(f"{target.url}/search?q=lamp")
    assert status == 200 and all("lamp" in p["name"] for p in found)
    status, created = post(f"{target.url}/orders", {"customer_id": 3, "product_id": 9, "quantity": 2})
    assert status == 201
    assert created["id"] in [o["id"] for o in get(f"{target.url}/customers/3/orders")[1]]
    assert post(f"{target.url}/orders", {"customer_id": "x"})[0] == 400
    assert get(f"{target.url}/search")[0] == 400
    assert served_requests(target) - before == 9


def test_metrics_has_route_histograms_in_flight_and_process_figures(target):
    families = {f.name: f for f in text_string_to_metric_families(target.metrics_text())}
    assert {"http_requests", "http_request_duration_seconds", "http_requests_in_progress", "process_cpu_seconds",
            "process_resident_memory_bytes", "demo_workers"} <= set(families)
    routes = {s.labels["route"] for s in families["http_request_duration_seconds"].samples if "route" in s.labels}
    assert "/products/{id}" in routes
    assert families["process_resident_memory_bytes"].samples[0].value > 10e6
    assert families["demo_workers"].samples[0].value == 1


def test_unindexed_filter_is_measurably_slower_than_primary_key(target):
    get(f"{target.url}/customers/1/orders")  # warm the connection and page cache
    pk = median_ms(f"{target.url}/products/5")
    scan = median_ms(f"{target.url}/customers/5/orders")
    assert scan > 1.5 * pk, (scan, pk)


def test_workers_inject_latency_and_counters_summed_across_processes():
    with DemoTarget(workers=2, rows=1000, extra_args=["--inject-latency", "/products/[id]=80"]) as shop:
        assert median_ms(f"{shop.url}/products/3", n=5) >= 80
        assert median_ms(f"{shop.url}/health", n=5) < 80
        for _ in range(40):
            get(f"{shop.url}/health")
        families = {f.name: f for f in text_string_to_metric_families(shop.metrics_text())}
        assert families["demo_workers"].samples[0].value == 2
        assert served_requests(shop) == 51  # start-up probe + 10 timed + 40, whichever worker answered


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--port", "0"], "--port"), (["--port", "1", "--rows", "5"], "--rows"),
     (["--port", "1", "--inject-latency", "nope"], "--inject-latency")],
)
def test_bad_arguments_are_one_line_errors(args, needle):
    proc = subprocess.run([sys.executable, "-m", "demo", *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
