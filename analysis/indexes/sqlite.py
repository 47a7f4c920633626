"""The index advisor for SQLite (the demo's default database), with the same output as
the PostgreSQL one.

Statements come from a statement log (JSON lines of `sql` and `ms`, as the demo target
writes with --log-statements). The database file is opened read-only; what-if indexes are
tried on an in-memory copy of its schema whose `sqlite_stat1` statistics are computed
from the real data with read-only COUNT queries, and `EXPLAIN QUERY PLAN` tells whether
the planner would use them. SQLite exposes no plan cost, so the cost is an estimate of
rows visited: a full scan visits every row, an index search the rows per key (from the
statistics), and a temporary sort adds n·log2(n).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from loadwise.analysis.indexes.choose import (
    ExistingIndex, IndexAdvice, IndexAdvisorSettings, Statement, choose, droppable, recommendation,
)  # fmt: skip
from loadwise.analysis.indexes.search import measure
from loadwise.analysis.indexes.usage import analyze
from loadwise.errors import LoadwiseError


class SqliteAdvisorError(LoadwiseError):
    pass


def read_statement_log(path: Path, top: int) -> list[Statement]:
    if not path.is_file():
        raise SqliteAdvisorError(f"{path}: no such statement log")
    totals: dict[str, list[float]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            sql, ms = str(entry["sql"]), float(entry["ms"])
        except (ValueError, KeyError, TypeError):
            raise SqliteAdvisorError(f"{path}:{number}: not a statement log line (JSON with sql and ms)") from None
        acc = totals.setdefault(sql, [0, 0.0])
        acc[0] += 1
        acc[1] += ms
    ranked = sorted(totals.items(), key=lambda kv: -kv[1][1])[:top]
    return [Statement(n, sql, int(c), t, t / c, 0) for n, (sql, (c, t)) in enumerate(ranked)]


def _as_postgres(sql: str) -> str:
    """`?` placeholders as $n, so PostgreSQL's grammar (pglast) reads the statement."""
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


class _WhatIf:
    def __init__(self, source: sqlite3.Connection):
        self.source = source
        self.memory = sqlite3.connect(":memory:")
        self.rows: dict[str, int] = {}
        self.distinct: dict[tuple[str, tuple[str, ...]], int] = {}
        ddl = source.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL"
                             " AND name NOT LIKE 'sqlite_%' ORDER BY type = 'index'").fetchall()  # fmt: skip
        self.indexes: list[ExistingIndex] = []
        for kind, name, table, sql in ddl:
            self.memory.execute(sql)
            if kind == "table":
                self.rows[name] = source.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
        self.memory.execute("ANALYZE")  # creates sqlite_stat1 (empty tables), which we then fill in
        self.memory.execute("DELETE FROM sqlite_stat1")
        for table, n in self.rows.items():
            self.memory.execute("INSERT INTO sqlite_stat1 VALUES (?, NULL, ?)", (table, str(max(n, 1))))
        for name, table in self.memory.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'").fetchall():
            columns = tuple(r[2] for r in self.memory.execute(f'PRAGMA index_info("{name}")').fetchall())
            unique = any(r[1] == name and r[2] for r in self.memory.execute(f'PRAGMA index_list("{table}")').fetchall())
            self._stat(name, table, columns)
            self.indexes.append(ExistingIndex(name, table, columns, unique, -1, 0))
        self.memory.execute("ANALYZE sqlite_master")  # reload the statistics we wrote

    def _stat(self, index: str, table: str, columns: tuple[str, ...]) -> None:
        n = max(self.rows.get(table, 1), 1)
        parts = [str(n)]
        for k in range(1, len(columns) + 1):
            key = (table, columns[:k])
            if key not in self.distinct:
                cols = ", ".join(f'"{c}"' for c in columns[:k])
                self.distinct[key] = self.source.execute(f'SELECT COUNT(*) FROM (SELECT DISTINCT {cols} FROM "{table}")').fetchone()[0]
            parts.append(str(max(1, math.ceil(n / max(self.distinct[key], 1)))))
        self.memory.execute("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", (table, index, " ".join(parts)))

    def cost(self, sql: str, params: int) -> float:
        plan = self.memory.execute(f"EXPLAIN QUERY PLAN {sql}", [None] * params).fetchall()
        total = 0.0
        for *_, detail in plan:
            scan = re.match(r"SCAN (\w+)", detail)
            search = re.match(r"SEARCH (\w+) USING (?:COVERING )?INDEX (\w+) \((.*)\)", detail)
            if search:
                table, index = search.group(1), search.group(2)
                stat = self.memory.execute("SELECT stat FROM sqlite_stat1 WHERE idx = ?", (index,)).fetchone()
                keys = search.group(3).count("=")
                per_key = [int(x) for x in stat[0].split()[1:]] if stat else [1]
                total += per_key[min(max(keys, 1), len(per_key)) - 1] if keys else self.rows.get(table, 1) / 3
            elif "SEARCH" in detail:
                total += 1  # rowid / primary-key lookup
            elif scan:
                total += self.rows.get(scan.group(1), 1)
            if "TEMP B-TREE" in detail:
                n = max(total, 2)
                total += n * math.log2(n)
        return total

    def with_index(self, table: str, columns: tuple[str, ...], sql: str, params: int) -> float:
        cols = ", ".join(f'"{c}"' for c in columns)
        self.memory.execute(f'CREATE INDEX lw_whatif ON "{table}" ({cols})')
        self._stat("lw_whatif", table, columns)
        self.memory.execute("ANALYZE sqlite_master")
        try:
            return self.cost(sql, params)
        finally:
            self.memory.execute("DROP INDEX lw_whatif")
            self.memory.execute("DELETE FROM sqlite_stat1 WHERE idx = 'lw_whatif'")
            self.memory.execute("ANALYZE sqlite_master")


class _SqlitePlanner:
    """The candidate loop's planner for SQLite: rows visited, on the in-memory what-if copy."""

    concurrently = False
    qualified = False
    errors = (sqlite3.Error,)

    def __init__(self, whatif: _WhatIf):
        self.whatif = whatif
        self.catalog = {t: {r[1] for r in whatif.memory.execute(f'PRAGMA table_info("{t}")')} for t in whatif.rows}

    def usage(self, query: str) -> dict[str, Any]:
        return analyze(_as_postgres(query), self.catalog)

    def parameters(self, query: str) -> int:
        return query.count("?")

    def isolated(self) -> AbstractContextManager[None]:
        return nullcontext()  # the what-if index is dropped by with_index itself

    def cost(self, query: str, params: int) -> float:
        return self.whatif.cost(query, params)

    def cost_with_index(self, table: str, columns: tuple[str, ...], query: str, params: int) -> tuple[float, int | None]:
        return self.whatif.with_index(table, columns, query, params), None


def advise(db_path: Path, log_path: Path, settings: IndexAdvisorSettings) -> IndexAdvice:
    if not db_path.is_file():
        raise SqliteAdvisorError(f"{db_path}: no such SQLite database")
    statements = read_statement_log(log_path, settings.top)
    try:
        source = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
        whatif = _WhatIf(source)
    except sqlite3.DatabaseError as exc:
        raise SqliteAdvisorError(f"{db_path}: not a usable SQLite database ({exc})") from None
    try:
        found, skipped = measure(statements, _SqlitePlanner(whatif), whatif.indexes)
    finally:
        source.close()
        whatif.memory.close()
    chosen = choose(found, settings)
    # SQLite counts no index scans (scans -1), so only duplicates can come back as droppable.
    return IndexAdvice([recommendation(c, settings) for c in chosen], droppable(whatif.indexes, concurrently=False, qualified=False),
                       [], len(statements), skipped, vars(settings), cost_unit="estimated rows visited")  # fmt: skip

