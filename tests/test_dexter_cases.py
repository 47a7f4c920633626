"""The index advisor on ankane/dexter's own statement cases (its test/statement_test.rb and
test/support/schema.sql, written here as facts: statement in, expected index or none out),
against the real throwaway PostgreSQL with HypoPG the suite starts.

Each case asserts the exact index (table, column order) or none, and that the advised CREATE
statement executes in PostgreSQL. Dexter's schema: `posts` (100,000 rows, an index on
`indexed`), a view over it, a materialized view of it, and `"Bar"."Foo"` (a schema off the
search path, quoted mixed-case names) and a foreign table. Not ported: Dexter's option tests
(its own command-line options)."""


import psycopg
import pytest
from test_dbadvisor import advisor_role, throwaway_database

from loadwise.analysis.indexes import postgres as pgadvisor
from loadwise.analysis.indexes.choose import IndexAdvisorSettings

pytestmark = pytest.mark.slow  # a 100,000-row database and one advisor pass per case

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE posts (id int, blog_id int, user_id int, indexed int);
INSERT INTO posts (id, blog_id, user_id, indexed) SELECT n, n % 1000, n % 10, n FROM generate_series(1, 100000) n;
CREATE INDEX ON posts (indexed);
CREATE VIEW posts_view AS SELECT id AS view_id FROM posts;
CREATE MATERIALIZED VIEW posts_materialized AS SELECT * FROM posts;
ANALYZE posts;
ANALYZE posts_materialized;
CREATE SCHEMA "Bar";
CREATE TABLE "Bar"."Foo"("Id" int);
INSERT INTO "Bar"."Foo" SELECT * FROM generate_series(1, 100000);
ANALYZE "Bar"."Foo";
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE SERVER other FOREIGN DATA WRAPPER postgres_fdw;
CREATE FOREIGN TABLE comments (post_id int) SERVER other;
"""

# statement -> (table, columns) Dexter finds, or None for "No new indexes found"
CASES = {
    "basic_index": ("SELECT * FROM posts WHERE id = 1", ("public.posts", ("id",))),
    "basic_no_index": ("SELECT * FROM posts", None),
    "multicolumn_order": ("SELECT * FROM posts WHERE user_id = 1 ORDER BY blog_id LIMIT 1000", ("public.posts", ("user_id", "blog_id"))),
    "update": ("UPDATE posts SET user_id = 2 WHERE user_id = 1", ("public.posts", ("user_id",))),
    "delete": ("DELETE FROM posts WHERE user_id = 1", ("public.posts", ("user_id",))),
    "view": ("SELECT * FROM posts_view WHERE view_id = 1", ("public.posts", ("id",))),
    "materialized_view": ("SELECT * FROM posts_materialized WHERE id = 1", ("public.posts_materialized", ("id",))),
    "cte": ("WITH cte AS (SELECT * FROM posts WHERE id = 1) SELECT * FROM cte", ("public.posts", ("id",))),
    "cte_fence": ("WITH cte AS (SELECT * FROM posts) SELECT * FROM cte WHERE id = 1", ("public.posts", ("id",))),
    "materialized_cte": ("WITH cte AS MATERIALIZED (SELECT * FROM posts) SELECT * FROM cte WHERE id = 1", None),
    "not_materialized_cte": ("WITH cte AS NOT MATERIALIZED (SELECT * FROM posts) SELECT * FROM cte WHERE id = 1",
                             ("public.posts", ("id",))),
    "order": ("SELECT * FROM posts ORDER BY user_id DESC LIMIT 10", ("public.posts", ("user_id",))),
    "order_multiple": ("SELECT * FROM posts ORDER BY user_id, blog_id LIMIT 10", ("public.posts", ("user_id", "blog_id"))),
    "normalized": ("SELECT * FROM posts WHERE id = $1", ("public.posts", ("id",))),
    "schema": ('SELECT * FROM "Bar"."Foo" WHERE "Id" = 10000', ('"Bar"."Foo"', ("Id",))),
    "no_tables": ("SELECT 1", None),
    "foreign_table": ("SELECT * FROM comments WHERE post_id = 1", None),
    # Not Dexter's: a range whose bounds are expressions of parameters (as ORMs send timestamps).
    "range_expression": ("SELECT * FROM posts WHERE id BETWEEN $1::int + 10 AND $2::int * 2", ("public.posts", ("id",))),
    "indexed": ("SELECT * FROM posts WHERE indexed = 1", None),
}  # fmt: skip


@pytest.fixture(scope="module")
def dexter_db(postgres_dsn):
    with throwaway_database(postgres_dsn, "lw_dexter", SCHEMA) as (dsn, conn):
        role_dsn = advisor_role(dsn)
        role = role_dsn.split("://", 1)[1].split("@", 1)[0]
        conn.execute(f"GRANT SELECT ON posts_view TO {role}")
        conn.execute(f'GRANT USAGE ON SCHEMA "Bar" TO {role}')
        conn.execute(f'GRANT SELECT ON "Bar"."Foo" TO {role}')
        conn.execute(f"GRANT UPDATE, DELETE ON posts TO {role}")  # EXPLAIN checks the privilege it plans for
        yield dsn, role_dsn


def _advise(dsn: str, query: str) -> pgadvisor.IndexAdvice:
    conn = pgadvisor.connect(dsn)
    try:
        return pgadvisor.advise(conn, IndexAdvisorSettings(), [pgadvisor.Statement(1, query, 100, 100.0, 1.0, 1)])
    finally:
        conn.close()


@pytest.mark.parametrize("case", list(CASES))
def test_dexter_statement_case(dexter_db, case):
    admin_dsn, dsn = dexter_db
    query, expected = CASES[case]
    result = _advise(dsn, query)
    found = [(r.table, tuple(r.columns)) for r in result.indexes]
    assert found == ([expected] if expected else []), (found, result.skipped)
    if case == "foreign_table":  # Dexter: "Tables not present in current database"; here: listed with HypoPG's reason
        assert "not a table" in result.skipped[0]["reason"]
    ranged = any(s["assumed_selectivity"] for r in result.indexes for s in r.statements)
    assert ranged == (case == "range_expression")  # the generic plan's assumption is said where it applies
    for rec in result.indexes:  # the advised statement is one PostgreSQL accepts
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            indexes = "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass"
            before = {row[0] for row in conn.execute(indexes, (rec.table,))}
            conn.execute(rec.create_statement)
            made = {row[0] for row in conn.execute(indexes, (rec.table,))} - before
            assert len(made) == 1
            conn.execute(f"DROP INDEX {made.pop()}")  # the next case starts from Dexter's schema again


def test_a_statement_that_does_not_parse_is_listed_with_its_reason(dexter_db):
    _, dsn = dexter_db
    result = _advise(dsn, "SELECT +")
    assert result.indexes == []
    assert [s["reason"] for s in result.skipped] and "parse" in result.skipped[0]["reason"]


PARTITIONED = """
CREATE TABLE events (id int, tenant int, at date) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO events SELECT n, n % 1000, date '2025-01-01' + (n % 700) FROM generate_series(1, 100000) n;
ANALYZE events;
"""


def test_a_partitioned_table_gets_statements_postgresql_accepts(dexter_db):
    """CREATE INDEX CONCURRENTLY on a partitioned parent fails in PostgreSQL: the advice builds
    one index per partition CONCURRENTLY and attaches each to one created ON ONLY the parent,
    and says so; run as given, the parent's index ends valid."""
    admin_dsn, dsn = dexter_db
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(PARTITIONED)
        role = dsn.split("://", 1)[1].split("@", 1)[0]
        conn.execute(f"GRANT SELECT ON events TO {role}")
    try:
        result = _advise(dsn, "SELECT * FROM events WHERE tenant = $1")
        (rec,) = result.indexes
        assert (rec.table, rec.columns) == ("public.events", ["tenant"])
        assert "partitioned" in rec.notes[0] and "CONCURRENTLY" in rec.notes[0]
        statements = rec.create_statement.splitlines()
        assert statements[0] == "CREATE INDEX events_tenant_idx ON ONLY public.events (tenant);"
        assert sum("CREATE INDEX CONCURRENTLY" in s for s in statements) == 2
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            for statement in statements:  # each on its own: CONCURRENTLY runs outside a transaction
                conn.execute(statement)
            valid = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_tenant_idx'::regclass").fetchone()
            assert valid == (True,)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE events")


def test_dropping_an_unused_index_waits_for_old_enough_statistics(dexter_db):
    """Right after a statistics reset every index looks unused: `posts_indexed_idx` (never
    scanned here) is listed with the statistics' age but no DROP until they are --min-stats-age
    old (default 7 days); indexes backing a constraint are never listed."""
    admin_dsn, dsn = dexter_db
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE tags (id int PRIMARY KEY, name text UNIQUE)")
        conn.execute("SELECT pg_stat_reset()")
    try:
        conn = pgadvisor.connect(dsn)
        try:
            young = pgadvisor.advise(conn, IndexAdvisorSettings(), []).drop
            old_enough = pgadvisor.advise(conn, IndexAdvisorSettings(min_stats_age=0), []).drop
        finally:
            conn.close()
        (held,) = [d for d in young if d["name"] == "public.posts_indexed_idx"]
        assert held["drop_statement"] is None and "too young" in held["reason"] and held["stats_age_s"] < 3600
        (advised,) = [d for d in old_enough if d["name"] == "public.posts_indexed_idx"]
        assert advised["drop_statement"] == "DROP INDEX CONCURRENTLY public.posts_indexed_idx;"
        assert "unused" in advised["reason"] and advised["stats_age"]
        assert not [d for d in young + old_enough if d["table"] == "public.tags"]  # primary key and unique constraint
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE tags")


@pytest.mark.parametrize("literal, value", [("timestamptz", "2024-06-01"), ("date", "2024-06-01"),
                                            ("interval", "1 day"), ("numeric", "5")])  # fmt: skip
def test_a_typed_literal_as_pg_stat_statements_normalizes_it_is_planned(dexter_db, literal, value):
    """pg_stat_statements writes `timestamptz '2024-06-01'` as `timestamptz $1`, which PostgreSQL's
    grammar refuses; the advisor plans it as `$1::timestamptz` and advises the index it needs."""
    admin_dsn, dsn = dexter_db
    column = {"timestamptz": "at", "date": "at::date", "interval": "at - now()", "numeric": "amount"}[literal]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS events_at (id int, at timestamptz, amount numeric)")
        conn.execute("TRUNCATE events_at")
        conn.execute("INSERT INTO events_at SELECT n, timestamptz '2024-01-01' + n * interval '1 minute', n % 997"
                     " FROM generate_series(1, 100000) n")  # fmt: skip
        conn.execute("ANALYZE events_at")
        role = dsn.split("://", 1)[1].split("@", 1)[0]
        conn.execute(f"GRANT SELECT ON events_at TO {role}")
        conn.execute("SELECT pg_stat_statements_reset()")
        where = f"{column} = {literal} '{value}'" if literal != "interval" else f"at > now() - {literal} '{value}'"
        conn.execute(f"SELECT id FROM events_at WHERE {where}")
        (normalized,) = conn.execute("SELECT query FROM pg_stat_statements WHERE query LIKE '%events_at WHERE%'").fetchone()
    assert f"{literal} $1" in normalized  # the premise: PostgreSQL's own normalization
    with pytest.raises(Exception):  # and PostgreSQL cannot parse it back
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"PREPARE lw_premise AS {normalized}")
    result = _advise(dsn, normalized)
    assert result.skipped == [], result.skipped
    advised = {"timestamptz": [("public.events_at", ("at",))], "numeric": [("public.events_at", ("amount",))],
               "date": [], "interval": []}  # an expression of the column; a range costed at a third of the rows
    assert [(r.table, tuple(r.columns)) for r in result.indexes] == advised[literal]
