"""The shop's database: SQLite by default, PostgreSQL when given a DSN.

Some access paths are deliberately unindexed (products by category, orders by customer)
so that they are measurably slower than the primary-key lookup; the DB advisor and the
capacity models need something true to find.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

CATEGORIES = [
    "books", "garden", "kitchen", "toys", "music", "sports", "tools", "office",
    "beauty", "health", "grocery", "pets", "baby", "shoes", "outdoor", "games",
    "camera", "phones", "audio", "video", "lighting", "bath", "bedding", "crafts",
]  # fmt: skip
ADJECTIVES = ["red", "large", "small", "quiet", "smart", "classic", "rustic", "modern", "vintage", "compact"]
NOUNS = ["lamp", "chair", "kettle", "guitar", "ball", "drill", "notebook", "brush", "speaker", "tent", "mug", "watch"]

SCHEMA = [
    "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,"
    " price REAL NOT NULL, description TEXT NOT NULL)",
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, product_id INTEGER NOT NULL,"
    " quantity INTEGER NOT NULL, created_at TEXT NOT NULL)",
]

MIN_ROWS = 1000


def table_sizes(rows: int) -> dict[str, int]:
    """Rows per table for a seed size: `rows` products, 5x orders, rows/10 customers."""
    return {"products": rows, "customers": max(rows // 10, 100), "orders": rows * 5}


class Store:
    """Thread-safe access to the shop database (one connection per thread)."""

    def __init__(self, dsn: str, statement_log: str | None = None):
        self.dsn = dsn
        self.is_postgres = dsn.startswith(("postgresql://", "postgres://"))
        self._local = threading.local()
        # One JSON line per executed read statement (text with ? placeholders, duration):
        # what `loadwise advise db --sqlite` reads, as PostgreSQL's pg_stat_statements is read.
        self.statement_log = statement_log

    @staticmethod
    def sqlite_path(dsn: str) -> str:
        return dsn.removeprefix("sqlite:///") if dsn.startswith("sqlite:///") else dsn

    def _connect(self) -> Any:
        if self.is_postgres:
            import psycopg

            return psycopg.connect(self.dsn, autocommit=True)
        conn = sqlite3.connect(self.sqlite_path(self.dsn), timeout=10, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @property
    def conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.is_postgres else sql

    def _query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        started = time.perf_counter()
        cur = self.conn.execute(self._sql(sql), params)
        columns = [c[0] for c in cur.description]
        rows = [dict(zip(columns, row)) for row in cur.fetchall()]
        if self.statement_log:
            line = json.dumps({"sql": sql, "ms": round((time.perf_counter() - started) * 1000, 3)}) + "\n"
            with open(self.statement_log, "a", encoding="utf-8") as log:  # O_APPEND: whole lines from every worker
                log.write(line)
        return rows

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        conn = self.conn
        if self.is_postgres:
            with conn.transaction():
                yield conn
        else:
            conn.execute("BEGIN")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # -- seeding -------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        try:
            return {t: self._query(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"] for t in ("products", "customers", "orders")}
        except Exception:
            if self.is_postgres:
                self.conn.rollback()
            return {}

    def seed(self, rows: int, seed: int = 42) -> bool:
        """Create and fill the tables unless they already hold this seed size. True if seeded."""
        sizes = table_sizes(rows)
        current = self.counts()
        if current and current["products"] == sizes["products"] and current["customers"] == sizes["customers"]:
            return False
        rng = random.Random(seed)
        start = datetime(2026, 1, 1, tzinfo=timezone.utc)
        products = [
            (
                i,
                f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {i}",
                rng.choice(CATEGORIES),
                round(rng.uniform(2, 500), 2),
                f"A {rng.choice(ADJECTIVES)} thing for {rng.choice(CATEGORIES)}",
            )
            for i in range(1, sizes["products"] + 1)
        ]
        customers = [(i, f"customer {i}", f"c{i}@example.test") for i in range(1, sizes["customers"] + 1)]
        orders = [
            (
                i,
                rng.randint(1, sizes["customers"]),
                rng.randint(1, sizes["products"]),
                rng.randint(1, 5),
                (start + timedelta(seconds=rng.randint(0, 300 * 86400))).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            for i in range(1, sizes["orders"] + 1)
        ]
        with self._transaction() as conn:
            for table in ("orders", "customers", "products"):
                conn.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in SCHEMA:
                conn.execute(statement)
            for table, data in (("products", products), ("customers", customers), ("orders", orders)):
                marks = ", ".join("?" * len(data[0]))
                sql = self._sql(f"INSERT INTO {table} VALUES ({marks})")
                if self.is_postgres:
                    with conn.cursor() as cur:
                        cur.executemany(sql, data)
                else:
                    conn.executemany(sql, data)
        if self.is_postgres:
            self.conn.execute("ANALYZE")
            # Orders get new ids after the seeded ones.
            self.conn.execute("CREATE SEQUENCE IF NOT EXISTS orders_id_seq")
            self.conn.execute("SELECT setval('orders_id_seq', (SELECT MAX(id) FROM orders))")
        return True

    # -- the shop's queries ----------------------------------------------------------

    def product(self, product_id: int) -> dict[str, Any] | None:
        rows = self._query("SELECT id, name, category, price, description FROM products WHERE id = ?", (product_id,))
        return rows[0] if rows else None

    def products_by_category(self, category: str, limit: int = 20) -> list[dict[str, Any]]:
        # Unindexed filter plus a sort: a full scan on every call.
        return self._query(
            "SELECT id, name, category, price FROM products WHERE category = ? ORDER BY price LIMIT ?",
            (category, limit),
        )

    def search(self, text: str, limit: int = 20) -> list[dict[str, Any]]:
        return self._query(
            "SELECT id, name, category, price FROM products WHERE name LIKE ? ORDER BY id LIMIT ?",
            (f"%{text}%", limit),
        )

    def customer_orders(self, customer_id: int, limit: int = 20) -> list[dict[str, Any]]:
        # Unindexed filter on the largest table.
        return self._query(
            "SELECT id, product_id, quantity, created_at FROM orders WHERE customer_id = ?"
            " ORDER BY created_at DESC LIMIT ?",
            (customer_id, limit),
        )

    def create_order(self, customer_id: int, product_id: int, quantity: int) -> int:
        created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._transaction() as conn:
            if self.is_postgres:
                row = conn.execute(
                    "INSERT INTO orders (id, customer_id, product_id, quantity, created_at)"
                    " VALUES (nextval('orders_id_seq'), %s, %s, %s, %s) RETURNING id",
                    (customer_id, product_id, quantity, created),
                ).fetchone()
                return int(row[0])
            cur = conn.execute(
                "INSERT INTO orders (customer_id, product_id, quantity, created_at) VALUES (?, ?, ?, ?)",
                (customer_id, product_id, quantity, created),
            )
            return int(cur.lastrowid)


def default_sqlite_dsn(directory: Path) -> str:
    return f"sqlite:///{directory / 'shop.db'}"
