"""Advising over 1,000 distinct statements on a throwaway PostgreSQL (needs PostgreSQL with
HypoPG installed, as `make test` does): prints the time and how many indexes it chose. Then
the time per statement on Dexter's ported cases (tests/test_dexter_cases.py), each advised
on its own five times: the median per case and the median over the cases."""

from __future__ import annotations

import itertools
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from services import Postgres  # noqa: E402
from test_dexter_cases import CASES, SCHEMA  # noqa: E402

from loadwise.analysis.indexes.choose import IndexAdvisorSettings  # noqa: E402
from loadwise.analysis.indexes import postgres as pgadvisor  # noqa: E402

TABLES, COLUMNS, STATEMENTS = 12, 6, 1000


def main() -> None:
    server = Postgres().start()
    try:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements; CREATE EXTENSION hypopg")
            for t in range(TABLES):
                cols = ", ".join(f"c{c} int" for c in range(COLUMNS))
                conn.execute(f"CREATE TABLE t{t} (id int PRIMARY KEY, {cols})")
                values = ", ".join(f"(g * {c + 3} + {t}) % {50 + 40 * c}" for c in range(COLUMNS))
                conn.execute(f"INSERT INTO t{t} SELECT g, {values} FROM generate_series(1, 20000) g")
            conn.execute("ANALYZE")
            conn.execute("SELECT pg_stat_statements_reset()")
            shapes = itertools.product(range(TABLES), itertools.permutations(range(COLUMNS), 3))
            for n, (t, (a, b, c)) in enumerate(itertools.islice(shapes, STATEMENTS)):
                conn.execute(f"SELECT id FROM t{t} WHERE c{a} = %s AND c{b} > %s ORDER BY c{c} LIMIT 10", (n % 7, n % 11)).fetchall()
        conn = pgadvisor.connect(server.dsn)
        started = time.perf_counter()
        # The benchmark's own throwaway server and tables: its superuser is trusted here.
        result = pgadvisor.advise(conn, IndexAdvisorSettings(top=STATEMENTS, max_indexes=25), allow_superuser=True)
        elapsed = time.perf_counter() - started
        reasons = sorted({s["reason"] for s in result.skipped})
        conn.close()
        print(f"db advisor: {result.statements_considered} distinct statements advised in {elapsed:.1f} s "
              f"(goal < 30 s: {'met' if elapsed < 30 else 'NOT met'}); {len(result.indexes)} indexes chosen, "
              f"{len(result.skipped)} statements skipped{(': ' + '; '.join(reasons[:3])) if reasons else ''}")  # fmt: skip
        _dexter_cases(server.dsn)
    finally:
        server.stop()


def _dexter_cases(admin_dsn: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE dexter")
    dsn = admin_dsn.rsplit("/", 1)[0] + "/dexter"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
    conn = pgadvisor.connect(dsn)
    per_case = {}
    try:
        for case, (query, _) in CASES.items():
            times = []
            for _ in range(5):
                started = time.perf_counter()
                pgadvisor.advise(conn, IndexAdvisorSettings(), [pgadvisor.Statement(1, query, 100, 100.0, 1.0, 1)],
                                 allow_superuser=True)  # the benchmark's own throwaway server  # fmt: skip
                times.append(time.perf_counter() - started)
            per_case[case] = statistics.median(times) * 1000
    finally:
        conn.close()
    slowest = max(per_case, key=per_case.get)
    print(f"db advisor on Dexter's {len(per_case)} ported cases: median {statistics.median(per_case.values()):.1f} ms "
          f"per statement (one advisor pass each, catalog reads included); slowest {slowest} {per_case[slowest]:.1f} ms")


if __name__ == "__main__":
    main()
