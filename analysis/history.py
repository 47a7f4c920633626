"""The run history: one row per run and its key statistics, in SQLite (a file, the default)
or PostgreSQL (a `postgresql://` URL), through the same SQL. Every write is one
transaction, so the store is never left half-written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadwise.analysis.rundir import RunInfo
from loadwise.errors import LoadwiseError

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS loadwise_runs (
        run_id TEXT PRIMARY KEY, scenario TEXT NOT NULL, shape TEXT NOT NULL, started_at TEXT NOT NULL,
        status TEXT NOT NULL, target_commit TEXT, tags TEXT NOT NULL, summary TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS loadwise_points (
        run_id TEXT NOT NULL REFERENCES loadwise_runs(run_id) ON DELETE CASCADE, endpoint TEXT NOT NULL,
        metric TEXT NOT NULL, value DOUBLE PRECISION, PRIMARY KEY (run_id, endpoint, metric))""",
]
POINT_METRICS = ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "error_rate", "rps")
OVERALL = "overall"


class HistoryError(LoadwiseError):
    """The history store cannot be opened or read; the message says which and why."""


@dataclass
class HistoryRun:
    run_id: str
    scenario: str
    shape: str
    started_at: str
    status: str
    target_commit: str | None


class History:
    def __init__(self, location: str):
        self.location = location
        self.is_postgres = location.startswith(("postgresql://", "postgres://"))
        try:
            if self.is_postgres:
                import psycopg

                self.conn: Any = psycopg.connect(location, connect_timeout=10)
            else:
                Path(location).parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(location, timeout=30)
                self.conn.execute("PRAGMA foreign_keys = ON")
            with self._transaction() as cur:
                for statement in SCHEMA:
                    cur.execute(statement)
        except HistoryError as exc:
            raise HistoryError(f"{location}: not a usable history database ({exc.__cause__ or exc})") from exc
        except (sqlite3.DatabaseError, OSError) as exc:
            raise HistoryError(f"{location}: not a usable history database ({exc})") from exc
        except Exception as exc:  # psycopg errors: unreachable server, bad credentials
            from loadwise.analysis.redact import redact

            raise HistoryError(f"{redact(location)}: cannot open the history ({redact(str(exc)).splitlines()[0]})") from exc

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.is_postgres else sql

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        cur = self.conn.cursor()
        try:
            yield _Cursor(cur, self._sql)
            self.conn.commit()
        except sqlite3.DatabaseError as exc:
            self.conn.rollback()
            raise HistoryError(f"{self.location}: the history does not read as expected ({exc})") from exc
        except BaseException as exc:
            self.conn.rollback()
            if type(exc).__module__.startswith("psycopg"):
                from loadwise.analysis.redact import redact

                raise HistoryError(f"{redact(self.location)}: {redact(str(exc).splitlines()[0])}") from exc
            raise
        finally:
            cur.close()

    def add(self, info: RunInfo, summary: dict[str, Any]) -> None:
        """Store (or replace) a run and its points, all or nothing."""
        points = [(OVERALL, m, summary.get("overall", {}).get(m)) for m in POINT_METRICS]
        for endpoint in summary.get("endpoints", []):
            label = f"{endpoint['method']} {endpoint['name']}"
            points += [(label, m, endpoint.get(m)) for m in POINT_METRICS]
        with self._transaction() as cur:
            cur.execute("DELETE FROM loadwise_points WHERE run_id = ?", (info.id,))
            cur.execute("DELETE FROM loadwise_runs WHERE run_id = ?", (info.id,))
            cur.execute(
                "INSERT INTO loadwise_runs (run_id, scenario, shape, started_at, status, target_commit, tags, summary)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (info.id, info.scenario, info.shape or "", info.started_at or "", info.status, info.target_commit,
                 json.dumps(info.tags, sort_keys=True), json.dumps(summary, sort_keys=True)),
            )  # fmt: skip
            cur.executemany(
                "INSERT INTO loadwise_points (run_id, endpoint, metric, value) VALUES (?, ?, ?, ?)",
                [(info.id, e, m, v) for e, m, v in points if v is not None],
            )

    def runs(self, scenario: str | None = None, shape: str | None = None, limit: int = 50) -> list[HistoryRun]:
        """Most recent last."""
        where, params = [], []
        if scenario:
            where.append("scenario = ?")
            params.append(scenario)
        if shape is not None:
            where.append("shape = ?")
            params.append(shape)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._transaction() as cur:
            cur.execute(
                f"SELECT run_id, scenario, shape, started_at, status, target_commit FROM loadwise_runs {clause}"
                " ORDER BY started_at DESC, run_id DESC LIMIT ?",
                (*params, limit),
            )
            rows = cur.fetchall()
        return [HistoryRun(*row) for row in reversed(rows)]

    def summary(self, run_id: str) -> dict[str, Any] | None:
        with self._transaction() as cur:
            cur.execute("SELECT summary FROM loadwise_runs WHERE run_id = ?", (run_id,))
            row = cur.fetchone()
        if not row:
            return None
        try:
            summary = json.loads(row[0])
        except (TypeError, ValueError) as exc:
            raise HistoryError(f"{self.location}: run {run_id} has a malformed summary ({exc})") from None
        if not isinstance(summary, dict):
            raise HistoryError(f"{self.location}: run {run_id} has a malformed summary")
        return summary

    def series(self, run_ids: list[str], endpoint: str, metric: str) -> list[float | None]:
        """The metric of each run in `run_ids` (in that order); None where a run lacks it."""
        if not run_ids:
            return []
        marks = ", ".join("?" * len(run_ids))
        with self._transaction() as cur:
            cur.execute(
                f"SELECT run_id, value FROM loadwise_points WHERE endpoint = ? AND metric = ? AND run_id IN ({marks})",
                (endpoint, metric, *run_ids),
            )
            found = dict(cur.fetchall())
        return [found.get(r) for r in run_ids]


class _Cursor:
    """A DB-API cursor that takes `?` placeholders whatever the database."""

    def __init__(self, cur: Any, sql: Any):
        self._cur, self._sql = cur, sql

    def execute(self, sql: str, params: tuple = ()) -> None:
        self._cur.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        if rows:
            self._cur.executemany(self._sql(sql), rows)

    def fetchall(self) -> list[tuple]:
        return self._cur.fetchall()

    def fetchone(self) -> tuple | None:
        return self._cur.fetchone()
