"""Predicted against measured, for the advice `loadwise verify` checks (needs PostgreSQL with
HypoPG and Redis installed, as `make test` does).

Cache: Zipf key streams (three skews, three target hit ratios): the exact-LRU curve's hit
ratio at the advised entries, the entries a real Redis kept under the maxmemory sized for them
(allkeys-lru, maxmemory-samples 5), the curve at that size, and Redis's own keyspace hit ratio:
the gap is the sampled eviction's, the spread of gaps the tolerance `verify` states.
Database: the demo shop on PostgreSQL with its filters unindexed; a run, `advise db`, the
advised indexes created, the same run again, `verify`: HypoPG's cost against the real index's
and each statement's mean time before and after.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from services import Postgres, Redis  # noqa: E402

from loadwise.analysis import verify  # noqa: E402
from loadwise.analysis.cache.advise import analyze  # noqa: E402
from loadwise.analysis.cache.mrc import zipf_trace  # noqa: E402
from loadwise.analysis.cache.replay import replay  # noqa: E402
from loadwise.analysis.cache.settings import CacheSettings  # noqa: E402
from loadwise.analysis.stored import Stored  # noqa: E402
from loadwise.run.demo_target import DemoTarget  # noqa: E402

REQUESTS, KEYS = 30_000, 3_000


def cache_cases(url: str) -> None:
    print(f"cache: {REQUESTS:,} requests over {KEYS:,} keys per stream, replayed on Redis")
    print(f"  {'skew':>5} {'target':>7} {'entries':>8} {'kept':>6} {'curve@kept':>11} {'redis':>7} {'gap':>7}")
    gaps = []
    for exponent in (0.8, 1.0, 1.2):
        keys = zipf_trace(REQUESTS, KEYS, exponent, seed=7)
        trace = pd.DataFrame({"timestamp": [i * 0.001 for i in range(REQUESTS)], "key": [f"k{k}" for k in keys]})
        for target in (0.5, 0.7, 0.85):
            advice = verify.AdvisedCache.read(Stored(analyze(trace, CacheSettings(target_hit_ratio=target)).to_dict(), "cache"))
            entries = advice.entries
            result = replay(trace, url, advice.replayed_entries)
            _, ratio = verify.cache_checks(advice, result.hit_ratio, result.held, "replayed")
            gaps.append(ratio.measured - ratio.predicted)
            print(f"  {exponent:>5.1f} {target:>7.0%} {entries:>8} {result.held:>6.0f} {ratio.predicted:>11.3f} "
                  f"{ratio.measured:>7.3f} {gaps[-1]:>+7.3f}")  # fmt: skip
    print(f"cache: gap (Redis - exact LRU at the size kept) median {statistics.median(gaps):+.3f}, "
          f"range {min(gaps):+.3f} to {max(gaps):+.3f}; verify confirms within ±{verify.HIT_RATIO_TOLERANCE:g}")


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "loadwise", *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, **(env or {})})  # fmt: skip


def database_case(server: Postgres, work: Path) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE shop")
    dsn = server.dsn.rsplit("/", 1)[0] + "/shop"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements; CREATE EXTENSION hypopg")
    (work / "loadwise.toml").write_text('[profiles.pg]\ndb_dsn_env = "BENCH_SHOP_DSN"\n')
    env = {"BENCH_SHOP_DSN": dsn}
    load = ["run", "browse", "--profile", "pg", "--users", "10", "--spawn-rate", "10", "--duration", "10s",
            "--out", str(work), "--no-report"]  # fmt: skip
    with DemoTarget(rows=20_000, extra_args=["--db", dsn]) as shop:
        before = _cli(*load, "--host", shop.url, cwd=work, env=env).stdout.strip().splitlines()[-1]
        # The benchmark's own throwaway server: its superuser is trusted here.
        advice = json.loads(_cli("advise", "db", "--dsn", dsn, "--allow-superuser", "--json", before, cwd=work).stdout)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for index in advice["indexes"]:
                for ddl in index["create_statement"].splitlines():
                    conn.execute(ddl)
            conn.execute("ANALYZE")
        after = _cli(*load, "--host", shop.url, cwd=work, env=env).stdout.strip().splitlines()[-1]
    found = json.loads(_cli("verify", before, after, "--dsn-env", "BENCH_SHOP_DSN", "--allow-superuser", "--json",
                            cwd=work, env=env).stdout)  # fmt: skip
    print(f"database: the demo shop (20,000 products) on PostgreSQL, {len(advice['indexes'])} advised indexes created")
    for check in found["checks"]:
        if check["quantity"].startswith(("planner cost", "mean time", "overall p95")):
            ratio = f"x{check['measured'] / check['predicted']:.3f}" if check["predicted"] and check["measured"] else ""
            print(f"  {check['advice'][:34]:<34} {check['quantity'][:48]:<48} before {check['before'] or 0:>9.3f} "
                  f"predicted {check['predicted'] or 0:>9.3f} measured {check['measured'] or 0:>9.3f} {ratio:>7} "
                  f"{check['verdict']}")  # fmt: skip


def main() -> None:
    redis_server = Redis().start()
    try:
        cache_cases(redis_server.url)
    finally:
        redis_server.stop()
    server = Postgres().start()
    try:
        with tempfile.TemporaryDirectory() as work:
            database_case(server, Path(work))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
