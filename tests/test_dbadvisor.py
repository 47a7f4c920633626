"""The database index advisor against a real throwaway PostgreSQL with pg_stat_statements
and HypoPG: known missing indexes, real speed-ups, the demo's own workload, and safety."""

import json
import statistics
import time
import uuid
from pathlib import Path

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
ANALYZE;
"""

WORKLOAD = {
    "equality": ("SELECT id, region FROM customers WHERE email = %s", lambda i: (f"c{i * 13 % 60000}@shop.test",)),
    "range_sort": ("SELECT id, total FROM orders WHERE created_at > %s ORDER BY created_at LIMIT 50",
                   lambda i: (f"2026-06-{1 + i % 27:02d}",)),
    "join": ("SELECT o.id, i.qty FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.id = %s", lambda i: (1 + i * 101,)),
    "two_columns": ("SELECT id, total FROM orders WHERE customer_id = %s AND status = %s", lambda i: (1 + i * 37, "paid")),
    "indexed": ("SELECT id FROM products WHERE sku = %s", lambda i: (f"sku-{1 + i}",)),
    "dml": ("UPDATE orders SET total = total WHERE customer_id = %s AND status = 'nope'", lambda i: (i,)),
}  # fmt: skip
EXPECTED = {"equality": ("customers", ["email"]), "range_sort": ("orders", ["created_at"]),
            "join": ("order_items", ["order_id"]), "two_columns": ("orders", ["customer_id", "status"])}  # fmt: skip


def _mean_ms(conn, sql, params_of, n=15):
    times = []
    for i in range(n):
        started = time.perf_counter()
        conn.execute(sql, params_of(i)).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.mean(times)


@pytest.fixture(scope="module")
def shop_db(postgres_dsn):
    name = f"lw_adv_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    dsn = postgres_dsn.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute("SELECT pg_stat_statements_reset()")
        for sql, params_of in WORKLOAD.values():
            for i in range(20):
                conn.execute(sql, params_of(i)).fetchall() if sql.startswith("SELECT") else conn.execute(sql, params_of(i))
        conn.execute("TRUNCATE audit_log")
    yield dsn
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_sql_usage_and_candidate_order():
    catalog = {"orders": {"id", "customer_id", "status", "created_at"}}
    usage = analyze("SELECT * FROM orders WHERE status = $1 AND created_at > $2 ORDER BY created_at", catalog)["orders"]
    assert usage.equality == ["status"] and usage.range == ["created_at"] and usage.sort == ["created_at"]
    assert candidate_columns(usage)[0] == ("status", "created_at")  # equality first, then range


def test_known_missing_indexes_are_recommended_in_the_right_order(shop_db):
    conn = pgadvisor.connect(shop_db)
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
    got = {(r["table"], tuple(r["columns"])) for r in result["indexes"]}
    for table, columns in EXPECTED.values():
        assert (table, tuple(columns)) in got, (table, columns, got)
    assert not any(r["table"] == "products" for r in result["indexes"])  # sku is already indexed
    for rec in result["indexes"]:
        assert rec["create_statement"].startswith("CREATE INDEX CONCURRENTLY")
        assert rec["cost_after"] < rec["cost_before"] and rec["size_bytes"] > 0 and rec["statements"]
    dropped = {d["name"]: d["reason"] for d in result["drop"]}
    assert any(r.startswith("duplicate") for r in dropped.values())  # products_category_idx is a prefix of another
    assert any(s["table"] == "orders" for s in result["seq_scans"])
    with psycopg.connect(shop_db) as check:
        assert check.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0  # the UPDATE was never run


def test_creating_the_recommendations_makes_the_slow_statements_ten_times_faster(shop_db):
    out = run_cli("advise", "db", "--dsn", shop_db, "--json")
    assert out.code == 0, out.stderr
    recs = json.loads(out.stdout)["indexes"]
    with psycopg.connect(shop_db, autocommit=True) as conn:
        before = {k: _mean_ms(conn, sql, p) for k, (sql, p) in WORKLOAD.items() if k in EXPECTED}
        for rec in recs:
            conn.execute(rec["create_statement"])
        conn.execute("ANALYZE")
        after = {k: _mean_ms(conn, sql, p) for k, (sql, p) in WORKLOAD.items() if k in EXPECTED}
        for rec in recs:
            conn.execute(f"DROP INDEX {rec['create_statement'].split()[3]}")
    print({k: f"{before[k]:.2f} -> {after[k]:.2f} ms" for k in before})
    for key in EXPECTED:
        assert before[key] >= 10 * after[key], (key, before[key], after[key])


@pytest.mark.slow
def test_advisor_finds_the_demo_targets_unindexed_filter(postgres_dsn, tmp_path):
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
    out = run_cli("advise", "db", "--dsn", dsn, "--json", run.last_line)
    assert out.code == 0, out.stderr
    assert json.loads(out.stdout)["window"].startswith("the run")
    found = {(r["table"], r["columns"][0]) for r in json.loads(out.stdout)["indexes"]}
    assert ("orders", "customer_id") in found or ("products", "category") in found, found
    summary = json.loads((Path(run.last_line) / "summary.json").read_text())
    assert summary["database"]["tables"]  # the report's database section
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_clear_errors(postgres_dsn, tmp_path):
    from loadwise.run.net import free_port

    down = run_cli("advise", "db", "--dsn", f"postgresql://u:secret@127.0.0.1:{free_port()}/x")
    assert down.code == 2
    assert_one_line_error(down, "cannot connect")
    assert "secret" not in down.stderr
    name = f"lw_bare_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    bare = run_cli("advise", "db", "--dsn", postgres_dsn.rsplit("/", 1)[0] + f"/{name}")
    assert bare.code == 2
    assert_one_line_error(bare, "extension pg_stat_statements is not installed", "CREATE EXTENSION")
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.mark.slow
def test_sqlite_advisor_on_the_demo_targets_statement_log(tmp_path):
    from loadwise.run.demo_target import DemoTarget

    db, log = tmp_path / "shop.db", tmp_path / "statements.jsonl"
    with DemoTarget(rows=20000, extra_args=["--db", f"sqlite:///{db}", "--log-statements", str(log)]) as shop:
        run = run_cli("run", "browse", "--host", shop.url, "--users", "6", "--spawn-rate", "6", "--duration", "5s",
                      "--out", str(tmp_path))
        assert run.code == 0, run.stderr
    before = db.stat().st_mtime
    out = run_cli("advise", "db", "--sqlite", str(db), "--statements", str(log), "--json", run.last_line)
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
    bad = run_cli("advise", "db", "--sqlite", str(db), "--statements", str(tmp_path / "none.jsonl"))
    assert bad.code == 2
    assert_one_line_error(bad, "no such statement log")
