"""The database index advisor against a real throwaway PostgreSQL with pg_stat_statements
and HypoPG: known missing indexes, real speed-ups, the demo's own workload, and safety.

The advisor connects as the role the README tells users to create (pg_read_all_stats and
SELECT, nothing more); a superuser DSN is refused unless --allow-superuser is given."""

import json
import statistics
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import assert_one_line_error, run_cli

from loadwise.analysis.indexes.choose import IndexAdvisorSettings
from loadwise.analysis.indexes.usage import analyze, candidate_columns
from loadwise.analysis.indexes import postgres as pgadvisor
SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, region text NOT NULL);
INSERT INTO customers SELECT g, 'c' || g || '@shop.test', 'r' || (g % 20) FROM generate_series(1, 60000) g;
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL,
                     created_at timestamptz NOT NULL, total numeric NOT NULL);
INSERT INTO orders SELECT g, 1 + (g::bigint * 7919) % 60000, (ARRAY['new','paid','sent','done'])[1 + g % 4],
       timestamptz '2026-01-01' + (g * 97 % 300000) * interval '1 minute', (g % 500) / 3.0
  FROM generate_series(1, 300000) g;
CREATE TABLE order_items (id int PRIMARY KEY, order_id int NOT NULL, product_id int NOT NULL, qty int NOT NULL);
INSERT INTO order_items SELECT g, 1 + (g * 31) % 300000, 1 + g % 5000, 1 + g % 3 FROM generate_series(1, 300000) g;
CREATE TABLE products (id int PRIMARY KEY, sku text NOT NULL UNIQUE, category text NOT NULL);
INSERT INTO products SELECT g, 'sku-' || g, 'cat' || (g % 40) FROM generate_series(1, 5000) g;
CREATE INDEX products_category_idx ON products (category);
CREATE INDEX products_category_id_idx ON products (category, id);
CREATE TABLE audit_log (at timestamptz DEFAULT now(), what text);
CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit_log (what) VALUES (TG_OP); RETURN NEW; END $$;
CREATE TRIGGER orders_audit AFTER INSERT OR UPDATE OR DELETE ON orders FOR EACH ROW EXECUTE FUNCTION audit();
CREATE TABLE victim (id int PRIMARY KEY, note text NOT NULL);
INSERT INTO victim SELECT g, 'n' || g FROM generate_series(1, 1000) g;
CREATE TABLE secrets (id int PRIMARY KEY, owner_id int NOT NULL, token text NOT NULL);
INSERT INTO secrets SELECT g, g % 5000, md5(g::text) FROM generate_series(1, 50000) g;
-- Mislabelled IMMUTABLE: the planner folds a call with a constant argument, so planning runs it.
CREATE FUNCTION leak(x int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit_log (what) VALUES ('leak'); RETURN x; END $$;
ANALYZE;
"""
VICTIM_ROWS = 1000

WORKLOAD = {
    "equality": ("SELECT id, region FROM customers WHERE email = %s", lambda i: (f"c{i * 13 % 60000}@shop.test",)),
    "range_sort": ("SELECT id, total FROM orders WHERE created_at > %s ORDER BY created_at LIMIT 50",
                   lambda i: (f"2026-06-{1 + i % 27:02d}",)),
    "join": ("SELECT o.id, i.qty FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.id = %s", lambda i: (1 + i * 101,)),
    "two_columns": ("SELECT id, total FROM orders WHERE customer_id = %s AND status = %s", lambda i: (1 + i * 37, "paid")),
    "indexed": ("SELECT id FROM products WHERE sku = %s", lambda i: (f"sku-{1 + i}",)),
    "dml": ("UPDATE orders SET total = total WHERE customer_id = %s AND status = 'nope'", lambda i: (i,)),
    "delete": ("DELETE FROM victim WHERE note = %s", lambda i: ("no such note",)),
    "not_readable": ("SELECT token FROM secrets WHERE owner_id = %s", lambda i: (i,)),  # the advisor may not read it
}  # fmt: skip
EXPECTED = {"equality": ("public.customers", ["email"]), "range_sort": ("public.orders", ["created_at"]),
            "join": ("public.order_items", ["order_id"]), "two_columns": ("public.orders", ["customer_id", "status"])}  # fmt: skip


def _median_ms(conn, sql, params_of, n=15):
    """Median server-side execution time (EXPLAIN ANALYZE of these SELECTs): the client's
    round trip, which a busy machine stretches, is no part of what an index changes."""
    times = []
    for i in range(n):
        plan = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params_of(i)).fetchone()[0]
        times.append(float(plan[0]["Execution Time"]))
    return statistics.median(times)


def advisor_role(admin_dsn: str) -> str:
    """The README's advisor role, created in the DSN's database as its commands say, and its DSN."""
    role = f"lw_advisor_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT pg_read_all_stats TO {role}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    return admin_dsn.replace("postgres@", f"{role}@", 1)


@contextmanager
def throwaway_database(admin_dsn: str, prefix: str, schema: str) -> Iterator[tuple[str, Any]]:
    """A new database on the test's server with `schema` applied: (its DSN, an autocommit
    connection to it); dropped afterwards, whatever connections are left."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(schema)
            yield dsn, conn
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def shop_db(postgres_dsn):
    with throwaway_database(postgres_dsn, "lw_adv", SCHEMA) as (dsn, conn):
        conn.execute("SELECT pg_stat_statements_reset()")
        for sql, params_of in WORKLOAD.values():
            for i in range(20):
                conn.execute(sql, params_of(i)).fetchall() if sql.startswith("SELECT") else conn.execute(sql, params_of(i))
        conn.execute("TRUNCATE audit_log")
        yield dsn


def test_sql_usage_and_candidate_order():
    catalog = {"orders": {"id", "customer_id", "status", "created_at"}}
    usage = analyze("SELECT * FROM orders WHERE status = $1 AND created_at > $2 ORDER BY created_at", catalog)["orders"]
    assert usage.equality == ["status"] and usage.range == ["created_at"] and usage.sort == ["created_at"]
    assert candidate_columns(usage)[0] == ("status", "created_at")  # equality first, then range


@pytest.fixture(scope="module")
def advisor_dsn(shop_db):
    """The advisor's role: it may read every table but `secrets`, and plan the workload's
    writes (EXPLAIN checks UPDATE and DELETE privileges; the read-only transaction keeps
    them unused, which the audit trigger and the victim table check)."""
    dsn = advisor_role(shop_db)
    role = dsn.split("://", 1)[1].split("@", 1)[0]
    with psycopg.connect(shop_db, autocommit=True) as conn:
        conn.execute(f"REVOKE SELECT ON secrets FROM {role}")
        conn.execute(f"GRANT UPDATE, DELETE ON orders, victim TO {role}")
    return dsn


def test_known_missing_indexes_are_recommended_in_the_right_order(shop_db, advisor_dsn):
    conn = pgadvisor.connect(advisor_dsn)
    try:
        result = pgadvisor.advise(conn, IndexAdvisorSettings())
        with conn.cursor() as cur:  # nothing left behind in the advisor's own session
            cur.execute("SELECT count(*) FROM hypopg_list_indexes")
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT count(*) FROM pg_prepared_statements")
            assert cur.fetchone()[0] == 0
        conn.rollback()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    finally:
        conn.close()
    got = {(r.table, tuple(r.columns)) for r in result.indexes}
    for table, columns in EXPECTED.values():
        assert (table, tuple(columns)) in got, (table, columns, got)
    assert not any(r.table == "public.products" for r in result.indexes)  # sku is already indexed
    for rec in result.indexes:
        assert rec.create_statement.startswith("CREATE INDEX CONCURRENTLY")
        assert rec.cost_after < rec.cost_before and rec.size_bytes > 0 and rec.statements
    dropped = {d["name"]: d["reason"] for d in result.drop}
    assert any(r.startswith("duplicate") for r in dropped.values())  # products_category_idx is a prefix of another
    assert any(s["table"] == "public.orders" for s in result.seq_scans)
    with psycopg.connect(shop_db) as check:
        assert check.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0  # the UPDATE was never run
        assert check.execute("SELECT count(*) FROM victim").fetchone()[0] == VICTIM_ROWS  # nor the DELETE
    reasons = {s["query"]: s["reason"] for s in result.skipped}
    assert any("secrets" in q and "permission denied" in r for q, r in reasons.items()), reasons
    assert [q for q in reasons if "secrets" not in q] == [], reasons  # every other statement was costed


def test_creating_the_recommendations_makes_the_slow_statements_ten_times_faster(shop_db, advisor_dsn, cli_here):
    out = cli_here("advise", "db", "--dsn", advisor_dsn, "--json")
    assert out.code == 0, out.stderr
    recs = json.loads(out.stdout)["indexes"]
    with psycopg.connect(shop_db, autocommit=True) as conn:
        before = {k: _median_ms(conn, sql, p) for k, (sql, p) in WORKLOAD.items() if k in EXPECTED}
        indexes = "SELECT indexrelid::regclass::text FROM pg_index"
        existing = {row[0] for row in conn.execute(indexes)}
        for rec in recs:
            conn.execute(rec["create_statement"])  # PostgreSQL names each index itself, as Dexter's do
        conn.execute("ANALYZE")
        after = {k: _median_ms(conn, sql, p) for k, (sql, p) in WORKLOAD.items() if k in EXPECTED}
        for index in {row[0] for row in conn.execute(indexes)} - existing:
            conn.execute(f"DROP INDEX {index}")
    print({k: f"{before[k]:.2f} -> {after[k]:.2f} ms" for k in before})
    for key in EXPECTED:
        assert before[key] >= 10 * after[key], (key, before[key], after[key])


@pytest.mark.slow
def test_advisor_finds_the_demo_targets_unindexed_filter(postgres_dsn, tmp_path, cli_here):
    from loadwise.run.demo_target import DemoTarget

    name = f"lw_demo_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    dsn = postgres_dsn.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements; CREATE EXTENSION hypopg")
    (tmp_path / "loadwise.toml").write_text('[profiles.pg]\ndb_dsn_env = "LW_TEST_SHOP_DSN"\n')
    with DemoTarget(rows=5000, extra_args=["--db", dsn]) as shop:
        run = run_cli("run", "browse", "--host", shop.url, "--profile", "pg", "--users", "6", "--spawn-rate", "6",
                      "--duration", "6s", "--out", str(tmp_path), cwd=tmp_path, env={"LW_TEST_SHOP_DSN": dsn})
        assert run.code == 0, run.stderr
    window = json.loads((Path(run.last_line) / "db_statements.json").read_text())
    assert window["problem"] is None and any("FROM orders" in s["query"] for s in window["statements"])
    assert dsn not in (Path(run.last_line) / "run.json").read_text()  # the DSN itself is never stored
    out = cli_here("advise", "db", "--dsn", advisor_role(dsn), "--json", run.last_line)
    assert out.code == 0, out.stderr
    assert json.loads(out.stdout)["window"].startswith("the run")
    found = {(r["table"], r["columns"][0]) for r in json.loads(out.stdout)["indexes"]}
    assert ("public.orders", "customer_id") in found or ("public.products", "category") in found, found
    summary = json.loads((Path(run.last_line) / "summary.json").read_text())
    assert summary["database"]["indexes"] == json.loads(out.stdout)["indexes"]  # the advice and its evidence, stored
    report = cli_here("report", run.last_line)
    assert report.code == 0, report.stderr
    page = Path(report.last_line).read_text()
    assert "Database indexes" in page and summary["database"]["indexes"][0]["create_statement"] in page
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_clear_errors(postgres_dsn, tmp_path, cli_here):
    from loadwise.run.net import free_port

    down = cli_here("advise", "db", "--dsn", f"postgresql://u:secret@127.0.0.1:{free_port()}/x")
    assert down.code == 2
    assert_one_line_error(down, "cannot connect")
    assert "secret" not in down.stderr
    name = f"lw_bare_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    bare = cli_here("advise", "db", "--dsn", postgres_dsn.rsplit("/", 1)[0] + f"/{name}")
    assert bare.code == 2
    assert_one_line_error(bare, "extension pg_stat_statements is not installed", "CREATE EXTENSION")
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.mark.slow
def test_sqlite_advisor_on_the_demo_targets_statement_log(tmp_path, cli_here):
    from loadwise.run.demo_target import DemoTarget

    db, log = tmp_path / "shop.db", tmp_path / "statements.jsonl"
    with DemoTarget(rows=20000, extra_args=["--db", f"sqlite:///{db}", "--log-statements", str(log)]) as shop:
        run = run_cli("run", "browse", "--host", shop.url, "--users", "6", "--spawn-rate", "6", "--duration", "5s",
                      "--out", str(tmp_path))
        assert run.code == 0, run.stderr
    before = db.stat().st_mtime
    out = cli_here("advise", "db", "--sqlite", str(db), "--statements", str(log), "--json", run.last_line)
    assert out.code == 0, out.stderr
    result = json.loads(out.stdout)
    found = {(r["table"], tuple(r["columns"])) for r in result["indexes"]}
    assert ("orders", ("customer_id",)) in found or ("orders", ("customer_id", "created_at")) in found, found
    assert ("products", ("category",)) in found or ("products", ("category", "price")) in found, found
    for rec in result["indexes"]:
        assert rec["cost_after"] < rec["cost_before"] and rec["create_statement"].startswith("CREATE INDEX")
    assert db.stat().st_mtime == before  # opened read-only
    import shutil
    import sqlite3

    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    with sqlite3.connect(copy) as conn:  # the advice is SQLite's own SQL, not PostgreSQL's
        for rec in result["indexes"]:
            conn.execute(rec["create_statement"])
    bad = cli_here("advise", "db", "--sqlite", str(db), "--statements", str(tmp_path / "none.jsonl"))
    assert bad.code == 2
    assert_one_line_error(bad, "no such statement log")


def _run_with_statements(tmp_path: Path, queries: list[str]) -> Path:
    """A run directory whose db_statements.json holds these texts, first one most expensive."""
    from synthetic import make_run

    run = make_run(tmp_path / "20260101T000000Z-synthetic", {("GET", "/a"): 5.0}, seconds=10)
    entries = [{"queryid": i, "query": q, "calls": 10, "total_ms": 1000.0 - i, "mean_ms": 10.0, "rows": 1}
               for i, q in enumerate(queries)]  # fmt: skip
    (run.path / "db_statements.json").write_text(json.dumps({"problem": None, "statements": entries}))
    return run.path


# A crafted db_statements.json: each entry would do harm if it were executed.
CRAFTED = [
    "SELECT id FROM victim WHERE note = $1; DROP TABLE victim",
    "SELECT 1; COMMIT; DELETE FROM victim",
    "SELECT id FROM customers WHERE region = $1; SELECT pg_sleep(30)",
    "COMMIT",
    "DROP TABLE victim",
    "SELECT * INTO stolen FROM victim",
]
# Single statements that are planned: each fails or is harmless, and none stops the next.
PLANNED = [
    "select token from secrets where owner_id = $1",  # permission denied to the advisor's role
    "SELECT id FROM orders WHERE customer_id = leak(5)",  # folded while planning: its INSERT is refused
    "DELETE FROM victim WHERE note = $1",  # planned, never executed
    "WITH gone AS (DELETE FROM victim RETURNING id) SELECT count(*) FROM gone",
    "SELECT id, region FROM customers WHERE email = $1",
]


def test_no_statement_from_a_run_directory_is_executed(shop_db, advisor_dsn, tmp_path, cli_here):
    run = _run_with_statements(tmp_path, CRAFTED + PLANNED)
    out = cli_here("advise", "db", "--dsn", advisor_dsn, "--json", str(run))
    assert out.code == 0, out.stderr
    result = json.loads(out.stdout)
    reasons = {s["query"]: s["reason"] for s in result["skipped"]}
    for query in CRAFTED:
        assert "statements in one entry" in reasons[query] or "never planned" in reasons[query], (query, reasons)
    assert "permission denied" in reasons[PLANNED[0]]
    # PostgreSQL refuses the folded INSERT (a non-volatile function may not write), and the
    # read-only transaction would refuse it next: either way it is reported, not done.
    assert "non-volatile function" in reasons[PLANNED[1]] or "read-only transaction" in reasons[PLANNED[1]]
    assert "note: statement not planned" in out.stderr  # each skipped statement is said, not dropped silently
    # One failed statement does not poison the rest: the last one still gets its index.
    assert ("public.customers", ["email"]) in [(r["table"], r["columns"]) for r in result["indexes"]], result
    with psycopg.connect(shop_db) as check:
        assert check.execute("SELECT count(*) FROM victim").fetchone()[0] == VICTIM_ROWS
        assert check.execute("SELECT to_regclass('stolen')").fetchone()[0] is None
        assert check.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0
        # Nothing of the refused texts reached the server (COMMIT is also psycopg's own: not checked here).
        reached = check.execute("SELECT query FROM pg_stat_statements WHERE query ~* 'pg_sleep|drop table|stolen'"
                                " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())").fetchall()  # fmt: skip
        assert reached == []
        assert check.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0


def test_a_superuser_is_refused_and_why(shop_db, advisor_dsn, tmp_path, cli_here):
    """Planning folds IMMUTABLE functions: one that calls dblink writes through a second
    connection the read-only transaction does not cover. The advisor's role cannot (dblink
    wants a password from a non-superuser); a superuser can, so it is refused by default."""
    with psycopg.connect(shop_db, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS dblink")
        conn.execute(f"""CREATE OR REPLACE FUNCTION remote_delete(x int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
                         BEGIN PERFORM dblink_exec('{shop_db}', 'DELETE FROM victim WHERE id = ' || x); RETURN x; END $$""")
    run = _run_with_statements(tmp_path, ["SELECT id, region FROM customers WHERE id = remote_delete(7)"])

    refused = cli_here("advise", "db", "--dsn", shop_db, str(run))
    assert refused.code == 2
    assert_one_line_error(refused, "is a superuser", "--allow-superuser", "pg_read_all_stats")

    as_advisor = cli_here("advise", "db", "--dsn", advisor_dsn, "--json", str(run))
    assert as_advisor.code == 0, as_advisor.stderr
    assert json.loads(as_advisor.stdout)["skipped"], as_advisor.stdout  # dblink refused the advisor's role
    with psycopg.connect(shop_db) as check:
        assert check.execute("SELECT count(*) FROM victim WHERE id = 7").fetchone()[0] == 1

    # What the refusal prevents, shown: with the flag, planning deletes through dblink.
    allowed = cli_here("advise", "db", "--dsn", shop_db, "--allow-superuser", "--json", str(run))
    assert allowed.code == 0, allowed.stderr
    with psycopg.connect(shop_db, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM victim WHERE id = 7").fetchone()[0] == 0
        conn.execute("INSERT INTO victim VALUES (7, 'n7')")


def test_a_damaged_statement_window_is_one_line(advisor_dsn, tmp_path, cli_here):
    run = _run_with_statements(tmp_path, ["SELECT 1"])
    (run / "db_statements.json").write_text(json.dumps({"problem": None, "statements": [{"query": 5}]}))
    out = cli_here("advise", "db", "--dsn", advisor_dsn, str(run))
    assert out.code == 2
    assert_one_line_error(out, "db_statements.json: statements[0]")


@pytest.mark.parametrize(("query", "sort", "group"), [
    ("SELECT user_id, created_at FROM orders WHERE id > $1 ORDER BY 2", ["created_at"], []),  # by position
    ("SELECT user_id AS u FROM orders WHERE id > $1 ORDER BY u", ["user_id"], []),  # by output alias
    ("SELECT user_id AS u, count(*) FROM orders GROUP BY 1", [], ["user_id"]),
    ("SELECT created_at AS id, count(*) FROM orders GROUP BY id", [], ["id"]),  # GROUP BY: the table's column first
    ("SELECT created_at AS id FROM orders WHERE user_id = $1 ORDER BY id", ["created_at"], []),  # ORDER BY: the alias
])  # fmt: skip
def test_order_and_group_by_position_and_alias_resolve_as_postgresql_reads_them(query, sort, group):
    """ORDER BY / GROUP BY by position and by output alias, with PostgreSQL's rule for a name
    that is both an alias and a column (its docs: ORDER BY takes the output column, GROUP BY
    the input column)."""
    usage = analyze(query, {"orders": {"id", "user_id", "created_at"}})["orders"]
    assert (usage.sort, usage.group) == (sort, group)


@pytest.mark.parametrize(("text", "value"), [("100%", 1.0), ("0%", 0.0), ("50%", 0.5), ("0.25", 0.25)])
def test_min_cut_takes_0_to_100_percent_inclusive(text, value):
    from loadwise.cli.main import build_parser

    assert build_parser().parse_args(["advise", "db", "--min-cut", text]).min_cut == value


def test_a_wider_index_must_halve_the_cost_again():
    """Dexter's rule (issue 19, item 6): `user_id = ? AND blog_id < ?` gets the one-column index
    unless the second column at least halves the planner cost again; both costs are evidence."""
    from loadwise.analysis.indexes.choose import Candidate, Effect, Statement, choose

    statement = Statement(1, "SELECT * FROM posts WHERE user_id = $1 AND blog_id < $2", 100, 500.0, 5.0, 1)

    def pair(wide_after: float) -> list[Candidate]:
        narrow = Candidate("posts", ("user_id",), 1000, [Effect(statement, 4000.0, 10.0)])
        wide = Candidate("posts", ("user_id", "blog_id"), 2000, [Effect(statement, 4000.0, wide_after)])
        return [wide, narrow]

    [chosen] = choose(pair(8.0), IndexAdvisorSettings())
    assert chosen.columns == ("user_id",)
    assert chosen.wider_rejected == [{"columns": ["user_id", "blog_id"], "cost_after": 8.0, "narrow_cost_after": 10.0}]
    [chosen] = choose(pair(4.0), IndexAdvisorSettings())
    assert chosen.columns == ("user_id", "blog_id")  # 4 <= 10 / 2: worth the column


def test_a_runs_recorded_statements_are_read_back_checked():
    """db_statements.json is outside input: a malformed entry is one error naming the file and
    the entry; a run that could not record says why; the costliest `top` are kept in order."""
    good = {"queryid": 1, "query": "SELECT 1", "calls": 3, "total_ms": 9.0, "mean_ms": 3.0, "rows": 3}
    window, problem = pgadvisor.recorded_window({"problem": None, "statements": [good, good | {"queryid": 2}]}, "f.json", 1)
    assert problem is None and [s.queryid for s in window] == [1] and window[0].mean_ms == 3.0
    assert pgadvisor.recorded_window({"problem": "no pg_stat_statements", "statements": []}, "f.json", 5)[0] is None
    with pytest.raises(pgadvisor.DbAdvisorError, match=r"f.json: statements\[1\] needs a text query"):
        pgadvisor.recorded_window({"statements": [good, good | {"calls": "3"}]}, "f.json", 5)
    with pytest.raises(pgadvisor.DbAdvisorError, match="not a statement window"):
        pgadvisor.recorded_window([], "f.json", 5)
