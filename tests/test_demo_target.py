"""The demo shop, started for real with `python -m loadwise.demo` on a free loopback port."""

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import counter_by_label, served_requests
from prometheus_client.parser import text_string_to_metric_families

from loadwise.run.demo_target import DemoTarget


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
    proc = subprocess.run([sys.executable, "-m", "loadwise.demo", *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_postgres_backend_serves_the_same_shop(postgres_dsn):
    import psycopg

    with DemoTarget(rows=1000, extra_args=["--db", postgres_dsn]) as shop:
        assert get(f"{shop.url}/products/12")[1]["id"] == 12
        status, listed = get(f"{shop.url}/products?category=toys")
        assert status == 200 and all(p["category"] == "toys" for p in listed)
        status, created = post(f"{shop.url}/orders", {"customer_id": 4, "product_id": 2})
        assert status == 201
        assert created["id"] in [o["id"] for o in get(f"{shop.url}/customers/4/orders")[1]]
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 5001
        assert conn.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 1000


def test_redis_cache_in_front_of_product_detail(redis_url):
    import redis

    with DemoTarget(rows=1000, extra_args=["--cache", redis_url]) as shop:
        first, second = get(f"{shop.url}/products/33"), get(f"{shop.url}/products/33")
        assert first == second and first[0] == 200
        assert counter_by_label(shop, "demo_cache_requests_total", "result") == {"miss": 1.0, "hit": 1.0}
    assert json.loads(redis.Redis.from_url(redis_url).get("product:33"))["id"] == 33


def test_sigterm_stops_cleanly_and_removes_its_temp_database(tmp_path):
    from loadwise.run.net import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "loadwise.demo", "--port", str(port), "--rows", "1000"],
                            env={**os.environ, "TMPDIR": str(tmp_path)}, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert get(f"http://127.0.0.1:{port}/health")[0] == 200
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert any(tmp_path.iterdir())  # the SQLite file lives here while serving
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not any(tmp_path.iterdir())
