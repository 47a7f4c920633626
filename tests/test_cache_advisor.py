"""The cache advisor with a real Redis and the demo target's Redis cache, end to end."""

import json
import time

import pytest
import redis
from conftest import assert_one_line_error, run_cli
from services import Redis

from loadwise.cacheadvisor import redis_report


@pytest.fixture
def fresh_redis():
    server = Redis().start()
    yield server.url
    server.stop()


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
    assert (report["hits"], report["misses"]) == (3, 3)
    assert report["expired_keys"] >= 1 and report["evicted_keys"] > 0
    assert report["maxmemory_policy"] == "allkeys-lru" and report["suggested_maxmemory"] > 0
    assert any("evicted" in a for a in report["advice"])


def test_trace_file_and_bad_input(tmp_path):
    import numpy as np

    keys = np.random.default_rng(3).zipf(1.2, 5000) % 500
    trace = tmp_path / "access.csv"
    trace.write_text("timestamp,key,size\n" + "\n".join(f"{i * 0.01:.2f},k{k},512" for i, k in enumerate(keys)))
    out = json.loads(run_cli("advise", "cache", "--trace", str(trace), "--target-hit-ratio", "50%", "--json").stdout)
    assert out["recommended"]["expected_hit_ratio"] >= 0.5 and out["recommended"]["bytes"] == out["recommended"]["entries"] * 512
    (tmp_path / "bad.csv").write_text("when,what\n1,2\n")
    bad = run_cli("advise", "cache", "--trace", str(tmp_path / "bad.csv"))
    assert bad.code == 2
    assert_one_line_error(bad, "needs columns timestamp and key")
    none = run_cli("advise", "cache")
    assert none.code == 2
    assert_one_line_error(none, "give RUN, --trace")
