"""Statements with their constants for the index advisor: read from a PostgreSQL log (the
formats PostgreSQL 15 writes, checked against a real server below) and from a SQL file."""

from __future__ import annotations

import json

import psycopg
import pytest
from test_dbadvisor import advisor_role, throwaway_database

from loadwise.analysis.indexes import sources

# PostgreSQL's stderr log with the default log_line_prefix ('%m [%p] '): a simple-protocol
# statement, an extended-protocol execute with its parameters (a quote doubled inside one;
# PostgreSQL 15 writes "parameters:", 12 and before "Parameters:"), a BEGIN (never planned),
# an auto_explain plan (PostgreSQL 16 adds Query Parameters), and a statement on two lines.
LOG = """\
2026-12-07 12:00:00.123 UTC [4242] LOG:  duration: 12.500 ms  statement: SELECT * FROM events WHERE at > '2024-06-01'
2026-12-07 12:00:00.200 UTC [4242] LOG:  duration: 2.500 ms  statement: SELECT * FROM events WHERE at > '2024-06-20'
2026-12-07 12:00:01.000 UTC [4242] LOG:  duration: 0.800 ms  execute <unnamed>: SELECT * FROM events WHERE tenant = $1 AND note = $2
2026-12-07 12:00:01.000 UTC [4242] DETAIL:  parameters: $1 = '7', $2 = 'it''s'
2026-12-07 12:00:01.100 UTC [4242] LOG:  duration: 0.100 ms  statement: BEGIN
2026-12-07 12:00:02.000 UTC [4243] LOG:  duration: 30.100 ms  plan:
\tQuery Text: SELECT * FROM events WHERE tenant = $1
\tQuery Parameters: $1 = '9'
\tSeq Scan on events  (cost=0.00..1693.00 rows=100 width=16)
\t  Filter: (tenant = 9)
2026-12-07 12:00:03.000 UTC [4243] LOG:  duration: 1.000 ms  statement: SELECT id
\tFROM events WHERE id = 3
2026-12-07 12:00:04.000 UTC [4243] LOG:  checkpoint starting: time
"""


def test_a_log_gives_each_statement_with_its_constants():
    found = {s.query: s for s in sources.from_log(LOG)}
    ranged = found["SELECT * FROM events WHERE at > '2024-06-01'"]  # the slower of the two: its constants planned
    assert (ranged.calls, ranged.total_ms, ranged.source) == (2, 15.0, sources.SOURCE_LOG)
    assert "SELECT * FROM events WHERE tenant = '7' AND note = 'it''s'" in found
    # auto_explain's tenant = '9' and the execute's tenant = '7' AND note differ in shape: two statements
    assert found["SELECT * FROM events WHERE tenant = '9'"].total_ms == 30.1
    assert "SELECT id\nFROM events WHERE id = 3" in found
    assert list(found)[0] == "SELECT * FROM events WHERE tenant = '9'"  # costliest first
    assert len(found) == 4  # the checkpoint line is no statement


def test_a_sql_file_gives_each_statement_once():
    found = sources.from_file("SELECT * FROM t WHERE a = 1;\nSELECT * FROM t WHERE a = 2;\nSELECT * FROM u WHERE b = 'x;y';\n")
    assert [(s.query, s.calls, s.source) for s in found] == [("SELECT * FROM t WHERE a = 1", 2, sources.SOURCE_FILE),
                                                            ("SELECT * FROM u WHERE b = 'x;y'", 1, sources.SOURCE_FILE)]  # fmt: skip


EVENTS = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE events (id int, tenant int, at timestamptz);
INSERT INTO events SELECT n, n % 50, timestamptz '2024-01-01' + n * interval '1 minute' FROM generate_series(1, 200000) n;
ANALYZE events;
"""


@pytest.mark.slow
def test_a_range_planned_with_its_logged_value_gets_the_index_the_generic_plan_misses(postgres_server, tmp_path, cli_here):
    """`WHERE at > $1` with a value near the end of the table: pg_stat_statements keeps `$1`, whose
    generic plan assumes a third of the rows match (no index pays off); the log keeps the value
    (one row in a thousand match), and that plan wants an index on `at`. Both from real PostgreSQL."""
    with throwaway_database(postgres_server.dsn, "lw_sources", EVENTS) as (dsn, conn):
        role = advisor_role(dsn)
        database = dsn.rsplit("/", 1)[1]
        conn.execute(f"ALTER DATABASE {database} SET log_min_duration_statement = 0")
        conn.execute("SELECT pg_stat_statements_reset()")
        start = postgres_server.log.stat().st_size
        with psycopg.connect(dsn) as app:  # a new session: the setting applies; psycopg binds $1 server-side
            for _ in range(5):
                app.execute("SELECT id, tenant FROM events WHERE at > %s", ("2024-05-18 00:00:00+00",)).fetchall()
        with open(postgres_server.log, encoding="utf-8", errors="replace") as handle:
            handle.seek(start)
            (tmp_path / "postgresql.log").write_text(handle.read())
        generic = cli_here("advise", "db", "--dsn", role, "--json")
        logged = cli_here("advise", "db", "--dsn", role, "--pg-log", str(tmp_path / "postgresql.log"), "--json")
    assert generic.code == 0 and logged.code == 0, (generic.stderr, logged.stderr)
    generic_indexes = [(r["table"], r["columns"]) for r in json.loads(generic.stdout)["indexes"]]
    result = json.loads(logged.stdout)
    assert ("public.events", ["at"]) not in generic_indexes, generic_indexes  # the premise: 1/3 of the rows assumed
    (index,) = [r for r in result["indexes"] if r["table"] == "public.events"]
    assert index["columns"] == ["at"] and result["window"].startswith("the PostgreSQL log postgresql.log")
    (statement,) = index["statements"]
    assert statement["source"] == sources.SOURCE_LOG and statement["calls"] == 5
    assert "'2024-05-18 00:00:00+00'" in statement["query"] and statement["assumed_selectivity"] is None
