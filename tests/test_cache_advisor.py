"""The cache advisor with a real Redis and the demo target's Redis cache, end to end."""

import json
import time
from pathlib import Path

import pytest
import redis
from conftest import assert_one_line_error, counter_by_label, run_cli

from loadwise.analysis.cache.redis import redis_report
from loadwise.run.demo_target import DemoTarget


def test_redis_figures_match_what_was_done_to_it(fresh_redis):
    client = redis.Redis.from_url(fresh_redis)
    client.config_set("maxmemory-policy", "allkeys-lru")
    for i in range(5):
        client.set(f"k{i}", "v")
    for i in range(3):
        assert client.get(f"k{i}") == b"v"
    assert client.get("nope1") is None and client.get("nope2") is None
    client.set("short", "v", px=50)
    time.sleep(0.2)
    assert client.get("short") is None  # expired (and a third miss)
    client.config_set("maxmemory", str(client.info("memory")["used_memory"] + 200_000))
    for i in range(2000):
        client.set(f"big{i}", "x" * 1000)
    report = redis_report(fresh_redis, recommended_entries=100)
    assert (report.hits, report.misses) == (3, 3)
    assert report.expired_keys >= 1 and report.evicted_keys > 0
    assert report.maxmemory_policy == "allkeys-lru" and report.suggested_maxmemory > 0
    assert any("evicted" in a for a in report.advice)


VIEWER = """
from locust import FastHttpUser, constant, task

from loadwise.scenarios.shop import product_id


class Viewer(FastHttpUser):
    # only the cached product detail, with the shop scenarios' skewed popularity
    wait_time = constant(0.005)

    @task
    def view(self):
        self.client.get(f"/products/{product_id()}", name="/products/[id]")
"""


def _run(shop: DemoTarget, tmp_path: Path) -> str:
    user = tmp_path / "viewer.py"
    user.write_text(VIEWER)
    result = run_cli("run", str(user), "--host", shop.url, "--users", "8", "--spawn-rate", "8", "--duration", "8s",
                     "--cache-endpoint", "/products/[id]", "--out", str(tmp_path))
    assert result.code == 0, result.stderr
    return result.last_line


@pytest.mark.slow
def test_the_recommended_size_reaches_the_predicted_hit_ratio(fresh_redis, tmp_path, cli_here):
    """Record a run's keys, take the advised size, and run again with the demo's Redis cache
    bounded to exactly that many entries (`--cache-entries`, an exact LRU kept in Redis).
    The hit ratio comes from the demo's own counters: Redis's keyspace_hits would also count
    the LRU bookkeeping."""
    with DemoTarget(rows=2000, extra_args=["--cache", fresh_redis]) as shop:
        first = _run(shop, tmp_path)
    advice = cli_here("advise", "cache", first, "--redis", fresh_redis, "--target-hit-ratio", "85%", "--json")
    assert advice.code == 0, advice.stderr
    out = json.loads(advice.stdout)
    entries, predicted = out["recommended"]["entries"], out["recommended"]["expected_hit_ratio"]
    assert len(out["mrc"]) >= 50 and 0 < entries < 1000 and predicted >= 0.85
    page = cli_here("report", first)
    assert page.code == 0 and "entries (target hit ratio 85%)" in (Path(first) / "report.html").read_text()
    redis.Redis.from_url(fresh_redis).flushall()
    with DemoTarget(rows=2000, extra_args=["--cache", fresh_redis, "--cache-entries", str(entries)]) as shop:
        _run(shop, tmp_path)
        lookups = {"hit": 0.0, "miss": 0.0} | counter_by_label(shop, "demo_cache_requests_total", "result")
    held = redis.Redis.from_url(fresh_redis).zcard("demo:lru")
    measured = lookups["hit"] / (lookups["hit"] + lookups["miss"])
    print(f"cache of {entries} entries ({held} held at the end): predicted hit ratio {predicted:.3f}, measured {measured:.3f} "
          f"over {lookups['hit'] + lookups['miss']:.0f} lookups")
    assert held == entries
    assert abs(measured - predicted) <= 0.05


def test_trace_file_and_bad_input(tmp_path, cli_here):
    import numpy as np

    keys = np.random.default_rng(3).zipf(1.2, 5000) % 500
    trace = tmp_path / "access.csv"
    trace.write_text("timestamp,key,size\n" + "\n".join(f"{i * 0.01:.2f},k{k},512" for i, k in enumerate(keys)))
    out = json.loads(cli_here("advise", "cache", "--trace", str(trace), "--target-hit-ratio", "50%", "--json").stdout)
    assert out["recommended"]["expected_hit_ratio"] >= 0.5 and out["recommended"]["bytes"] == out["recommended"]["entries"] * 512
    (tmp_path / "bad.csv").write_text("when,what\n1,2\n")
    bad = cli_here("advise", "cache", "--trace", str(tmp_path / "bad.csv"))
    assert bad.code == 2
    assert_one_line_error(bad, "needs columns timestamp and key")
    none = cli_here("advise", "cache")
    assert none.code == 2
    assert_one_line_error(none, "give RUN, --trace")
