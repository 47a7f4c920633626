"""The database index advisor's I/O: PostgreSQL statistics, catalog and HypoPG what-ifs.

Safety: the connection is read-only; everything happens in one transaction that is rolled
back; only PREPARE, EXPLAIN (never ANALYZE), DEALLOCATE and HypoPG functions run, under a
statement timeout. Statements from pg_stat_statements or a run directory are planned, never
executed: each must parse as one SELECT, INSERT, UPDATE or DELETE (`single_statement`) and
is sent through the extended protocol, which refuses a second statement in the text.
Planning can still call functions (the planner folds IMMUTABLE calls with constant
arguments), so a role that can act outside the read-only transaction (a superuser, e.g.
through dblink) is refused unless the user says otherwise.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from loadwise.errors import LoadwiseError
from loadwise.analysis.indexes.choose import (
    ExistingIndex,
    IndexAdvice,
    Partitioning,
    IndexAdvisorSettings,
    Statement,
    choose,
    droppable,
    recommendation,
)
from loadwise.analysis.redact import redact
from loadwise.analysis.indexes.search import measure
from loadwise.analysis.indexes.sources import PLANNABLE_TEXT as _PLANNABLE  # one definition, the INSERT choice there
from loadwise.analysis.indexes.usage import (
    SqlUsageError, analyze, derived_columns, parameter_count, plannable, qualified, quote, single_statement,
)  # fmt: skip

_OURS = re.compile(r"pg_stat_statements|hypopg|pg_catalog|information_schema|pg_prepared|pg_roles|lw_advise_", re.IGNORECASE)


class DbAdvisorError(LoadwiseError):
    """Connection, extension or permission problem; one line saying what to do."""


# Roles whose functions can reach outside a read-only transaction: a superuser (dblink to
# itself, untrusted languages) and the server-file and server-program roles.
_UNSAFE_ROLES = ("pg_execute_server_program", "pg_write_server_files")


def check_role(cur: Any, allow_superuser: bool) -> None:
    """Refuse a role that read-only mode cannot hold back, unless the user allowed it."""
    cur.execute(
        "SELECT current_user, rolsuper, ARRAY(SELECT r FROM unnest(%s::text[]) r"
        " WHERE pg_has_role(current_user, r, 'MEMBER')) FROM pg_roles WHERE rolname = current_user",
        (list(_UNSAFE_ROLES),),
    )
    user, superuser, unsafe = cur.fetchone()
    if allow_superuser or not (superuser or unsafe):
        return
    what = "a superuser" if superuser else f"a member of {', '.join(unsafe)}"
    raise DbAdvisorError(
        f"role {user!r} is {what}: planning a statement can run functions it calls (IMMUTABLE ones are folded), and "
        "such a role can write despite the read-only transaction (dblink, untrusted languages). Connect as a role "
        "with only pg_read_all_stats and SELECT (see docs/db.md), or pass --allow-superuser if you trust every "
        "function those statements call"
    )


def connect(dsn: str) -> Any:
    import psycopg

    try:
        conn = psycopg.connect(dsn, connect_timeout=10)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DbAdvisorError(f"cannot connect to {redact(dsn)}: {redact(first)}") from None
    conn.read_only = True  # BEGIN READ ONLY: the advisor cannot write even by mistake
    return conn


def _check_extensions(cur: Any) -> None:
    cur.execute("SELECT extname FROM pg_extension")
    installed = {row[0] for row in cur.fetchall()}
    for ext, how in (
        ("pg_stat_statements", "add pg_stat_statements to shared_preload_libraries, restart, then CREATE EXTENSION pg_stat_statements"),
        ("hypopg", "install HypoPG (e.g. the postgresql-15-hypopg package), then CREATE EXTENSION hypopg"),
    ):  # fmt: skip
        if ext not in installed:
            raise DbAdvisorError(f"extension {ext} is not installed in this database: {how}")


def read_statements(cur: Any, top: int) -> list[Statement]:
    cur.execute(
        "SELECT queryid, query, calls, total_exec_time, mean_exec_time, rows FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " ORDER BY total_exec_time DESC LIMIT %s",
        (top * 4,),
    )
    out = []
    for queryid, query, calls, total, mean, rows in cur.fetchall():
        if _PLANNABLE.match(query) and not _OURS.search(query):
            out.append(Statement(int(queryid), query, int(calls), float(total), float(mean), int(rows)))
    return out[:top]


Catalog = dict[str, set[str]]  # qualified table name (`public.posts`, `"Bar"."Foo"`) -> its columns
SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')"


def read_catalog(cur: Any) -> tuple[Catalog, dict[str, str]]:
    """Every table and materialized view outside the system schemas, by qualified name, and
    the names a statement may use bare: the search path's tables, the first schema's winning."""
    cur.execute(
        "SELECT n.nspname, c.relname, a.attname, array_position(current_schemas(false), n.nspname)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = c.oid WHERE c.relkind IN ('r', 'p', 'm') AND a.attnum > 0"
        f" AND NOT a.attisdropped AND n.nspname NOT IN {SYSTEM_SCHEMAS}"
    )
    catalog: Catalog = {}
    visible: dict[str, tuple[int, str]] = {}
    for schema, table, column, position in cur.fetchall():
        key = qualified(schema, table)
        catalog.setdefault(key, set()).add(column)
        if position is not None and (table not in visible or position < visible[table][0]):
            visible[table] = (position, key)
    return catalog, {name: key for name, (_, key) in visible.items()}


def read_views(cur: Any, catalog: Catalog, visible: dict[str, str]) -> dict[str, dict[str, tuple[str, str]]]:
    """Each view on the search path -> the table columns it passes on unchanged, from its
    definition (a view over a view reads through both; one that cannot be read passes on nothing).
    Materialized views are tables here (they are in the catalog and take indexes)."""
    cur.execute(
        "SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'v' AND n.nspname = ANY (current_schemas(false)) ORDER BY c.oid"
    )
    views: dict[str, dict[str, tuple[str, str]]] = {}
    for name, definition in cur.fetchall():
        try:
            views[name] = derived_columns(definition, catalog, views, visible)
        except Exception:  # pglast cannot read it: statements on it get no index through it
            views[name] = {}
    return views


def stats_age_s(cur: Any) -> float:
    """How old the usage statistics are: since the youngest of the database's statistics reset
    and pg_stat_statements' (PostgreSQL 14+); never reset, at least since the server started."""
    cur.execute("SELECT to_regclass('pg_stat_statements_info') IS NOT NULL")
    statements = "(SELECT stats_reset FROM pg_stat_statements_info)" if cur.fetchone()[0] else "NULL::timestamptz"
    cur.execute(
        "SELECT EXTRACT(EPOCH FROM now() - COALESCE(GREATEST((SELECT stats_reset FROM pg_stat_database"
        f" WHERE datname = current_database()), {statements}), pg_postmaster_start_time()))"
    )
    return float(cur.fetchone()[0])


def read_partitions(cur: Any) -> dict[str, Partitioning]:
    """Each partitioned table (by qualified name) with its partitions."""
    cur.execute(
        "SELECT pn.nspname, p.relname, cn.nspname, c.relname, c.relkind = 'p' FROM pg_inherits i"
        " JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace"
        " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace"
        " WHERE p.relkind = 'p' ORDER BY cn.nspname, c.relname"
    )
    out: dict[str, Partitioning] = {}
    for schema, name, part_schema, part_name, nested in cur.fetchall():
        parent = out.setdefault(qualified(schema, name), Partitioning(schema, name, [], False))
        parent.partitions.append((part_schema, part_name))
        parent.nested = parent.nested or bool(nested)
    return out


def read_indexes(cur: Any) -> list[ExistingIndex]:
    cur.execute(
        "SELECT n.nspname, ci.relname, t.relname, i.indisunique OR i.indisprimary"
        " OR EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid),"
        " COALESCE(s.idx_scan, 0), pg_relation_size(i.indexrelid),"
        " ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)"
        "       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord)"
        " FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
        " JOIN pg_class ci ON ci.oid = i.indexrelid"
        " LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid"
        # An invalid index (a failed CREATE INDEX CONCURRENTLY) or one not yet ready serves no
        # query: it must not count as covering a candidate, nor be judged unused by its scans.
        f" WHERE n.nspname NOT IN {SYSTEM_SCHEMAS} AND i.indisvalid AND i.indisready"
    )
    return [ExistingIndex(qualified(schema, name), qualified(schema, table), tuple(cols), bool(unique), int(scans), int(size))
            for schema, name, table, unique, scans, size, cols in cur.fetchall()]  # fmt: skip


def seq_scans(cur: Any, limit: int = 10) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT schemaname, relname, seq_scan, seq_tup_read, COALESCE(idx_scan, 0), n_live_tup FROM pg_stat_user_tables"
        " WHERE seq_scan > 0 ORDER BY seq_tup_read DESC LIMIT %s",
        (limit,),
    )
    return [{"table": qualified(schema, t), "seq_scans": int(s), "rows_read": int(r), "index_scans": int(i), "live_rows": int(n),
             "rows_per_scan": round(r / s, 1)} for schema, t, s, r, i, n in cur.fetchall()]  # fmt: skip


_names = itertools.count()


def _cost(cur: Any, query: str, params: int) -> float:
    """Estimated total cost of the statement's generic plan (parameters unknown).

    `binary=True` makes psycopg use the extended protocol, which takes one statement only;
    the simple protocol would run every `;`-separated statement in the text.
    """
    single_statement(query)
    name = f"lw_advise_{next(_names)}"  # a fresh name: a failed DEALLOCATE cannot block the next PREPARE
    cur.execute(f"PREPARE {name} AS {query}", binary=True)
    args = "(" + ", ".join(["NULL"] * params) + ")" if params else ""
    cur.execute(f"EXPLAIN (FORMAT JSON) EXECUTE {name}{args}", binary=True)
    plan = cur.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, (str, bytes)) else plan
    cur.execute(f"DEALLOCATE {name}")
    return float(plan[0]["Plan"]["Total Cost"])


def _forget(cur: Any) -> None:
    """Prepared statements and hypothetical indexes outlive a rolled-back savepoint: drop them."""
    cur.execute("DEALLOCATE ALL")
    cur.execute("SELECT hypopg_reset()")


class _PostgresPlanner:
    """The candidate loop's planner for PostgreSQL: generic-plan costs with HypoPG indexes.

    Each statement runs in a savepoint; prepared statements and hypothetical indexes survive
    its rollback, so they are dropped after it whatever happened."""

    concurrently = True
    qualified = True

    def __init__(self, conn: Any, cur: Any, catalog: Catalog, visible: dict[str, str]):
        import psycopg

        self.conn, self.cur, self.catalog, self.visible = conn, cur, catalog, visible
        self.views = read_views(cur, catalog, visible)
        self.errors = (psycopg.Error, SqlUsageError)

    def usage(self, query: str) -> dict[str, Any]:
        return analyze(query, self.catalog, self.views, self.visible)

    def parameters(self, query: str) -> int:
        return parameter_count(query)

    @contextmanager
    def isolated(self) -> Iterator[None]:
        try:
            with self.conn.transaction():
                yield
        finally:
            _forget(self.cur)

    def cost(self, query: str, params: int) -> float:
        return _cost(self.cur, query, params)

    def cost_with_index(self, table: str, columns: tuple[str, ...], query: str, params: int) -> tuple[float, int | None]:
        ddl = f"CREATE INDEX ON {table} ({', '.join(quote(c) for c in columns)})"
        self.cur.execute("SELECT indexrelid FROM hypopg_create_index(%s)", (ddl,))
        oid = self.cur.fetchone()[0]
        try:
            after = _cost(self.cur, query, params)
            self.cur.execute("SELECT hypopg_relation_size(%s)", (oid,))
            return after, int(self.cur.fetchone()[0])
        finally:
            self.cur.execute("SELECT hypopg_drop_index(%s)", (oid,))


@contextmanager
def _planning(conn: Any, settings: IndexAdvisorSettings, allow_superuser: bool, extensions: bool = False) -> Iterator[Any]:
    """A cursor for planning only, as the advisor plans: generic plans under a statement timeout,
    the role checked (and the extensions, for advice), errors as one line, the session left clean."""
    import psycopg

    # psycopg would prepare repeated queries under its own names, which DEALLOCATE ALL removes.
    conn.prepare_threshold = None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('statement_timeout', %s, true)", (str(settings.statement_timeout_ms),))
            cur.execute("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)")
            if extensions:
                _check_extensions(cur)
            check_role(cur, allow_superuser)
            yield cur
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DbAdvisorError(f"permission denied: {str(exc).strip().splitlines()[0]} (the advisor needs pg_read_all_stats)") from None
    except psycopg.OperationalError as exc:
        raise DbAdvisorError(f"database error: {redact(str(exc).strip().splitlines()[0])}") from None
    finally:
        _leave_clean(conn)


def advise(conn: Any, settings: IndexAdvisorSettings, statements: list[Statement] | None = None,
           *, allow_superuser: bool = False) -> IndexAdvice:  # fmt: skip
    """Recommendations with their evidence; the connection is left as it was found.
    `statements` (e.g. a run's window) replaces the cumulative pg_stat_statements.
    A statement that cannot be planned is skipped with its reason; the others go on."""
    with _planning(conn, settings, allow_superuser, extensions=True) as cur:
        if statements is None:
            statements = read_statements(cur, settings.top)
        catalog, visible = read_catalog(cur)
        existing = read_indexes(cur)
        found, skipped = measure(statements, _PostgresPlanner(conn, cur, catalog, visible), existing)
        partitions = read_partitions(cur)
        dead = droppable(existing, stats_age_s=stats_age_s(cur), min_stats_age_s=settings.min_stats_age)
        scans = seq_scans(cur)
    chosen = choose(found, settings)
    for candidate in chosen:
        candidate.partitioning = partitions.get(candidate.table)
    return IndexAdvice([recommendation(c, settings) for c in chosen], dead, scans, len(statements), skipped, vars(settings))


def _leave_clean(conn: Any) -> None:
    """Roll back; hypothetical indexes and prepared statements are per session, drop them too."""
    try:
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute("SELECT hypopg_reset()") if _has_hypopg(cur) else None
            cur.execute("DEALLOCATE ALL")
        conn.rollback()
    except Exception:
        pass


def _has_hypopg(cur: Any) -> bool:
    cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'")
    return cur.fetchone() is not None


def snapshot(dsn: str) -> dict[int, tuple[str, int, float, int]]:
    """pg_stat_statements now: queryid -> (query, calls, total ms, rows). Read-only."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            _check_extensions(cur)
            cur.execute(
                "SELECT queryid, query, calls, total_exec_time, rows FROM pg_stat_statements"
                " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            return {int(q): (text, int(c), float(t), int(r)) for q, text, c, t, r in cur.fetchall()}
    except Exception as exc:
        if isinstance(exc, DbAdvisorError):
            raise
        raise DbAdvisorError(f"cannot read pg_stat_statements: {redact(str(exc).strip().splitlines()[0])}") from None
    finally:
        conn.rollback()
        conn.close()


def window(start: dict[int, tuple[str, int, float, int]], end: dict[int, tuple[str, int, float, int]]) -> list[dict[str, Any]]:
    """What ran between two snapshots (a reset in between counts from zero)."""
    out = []
    for queryid, (query, calls, total, rows) in end.items():
        _, c0, t0, r0 = start.get(queryid, (query, 0, 0.0, 0))
        if calls < c0:  # statistics were reset during the run
            c0, t0, r0 = 0, 0.0, 0
        if calls - c0 > 0 and _PLANNABLE.match(query) and not _OURS.search(query):
            out.append({"queryid": queryid, "query": query, "calls": calls - c0, "total_ms": total - t0,
                        "mean_ms": (total - t0) / (calls - c0), "rows": rows - r0})  # fmt: skip
    return sorted(out, key=lambda s: -s["total_ms"])


def recorded_window(recorded: Any, where: str, top: int) -> tuple[list[Statement] | None, str | None]:
    """A run's db_statements.json (what `window` made during the run) as statements, its `top`
    costliest; or None and why, when the run could not record them. Outside input: each entry's
    types are checked, and a malformed one is a DbAdvisorError naming `where` and its index."""
    if not isinstance(recorded, dict) or not isinstance(recorded.get("statements", []), list):
        raise DbAdvisorError(f"{where}: not a statement window (problem, statements)")
    if recorded.get("problem"):
        return None, f"the run's statements were not recorded ({recorded['problem']}); using all statistics"
    numbers = ("queryid", "calls", "total_ms", "mean_ms", "rows")
    out = []
    for index, entry in enumerate(recorded["statements"][:top]):
        if (not isinstance(entry, dict) or not isinstance(entry.get("query"), str)
                or not all(isinstance(entry.get(k), (int, float)) and not isinstance(entry.get(k), bool) for k in numbers)):
            raise DbAdvisorError(f"{where}: statements[{index}] needs a text query and numbers {', '.join(numbers)}")
        out.append(Statement(int(entry["queryid"]), entry["query"], int(entry["calls"]), float(entry["total_ms"]),
                             float(entry["mean_ms"]), int(entry["rows"])))  # fmt: skip
    return out, None


def costs_now(conn: Any, queries: list[str], settings: IndexAdvisorSettings, *,
              allow_superuser: bool = False) -> tuple[dict[str, float], list[tuple[str, tuple[str, ...]]]]:  # fmt: skip
    """Each statement's generic-plan cost as the database plans it now (with whatever indexes
    exist: the real ones once advice was applied), and the indexes that exist, as (table,
    columns). Read-only as the advisor is: EXPLAIN of prepared statements, rolled back; a
    statement that cannot be planned is left out."""
    import psycopg

    costs: dict[str, float] = {}
    with _planning(conn, settings, allow_superuser) as cur:
        existing = [(index.table, index.columns) for index in read_indexes(cur)]
        for query in dict.fromkeys(queries):
            planned = plannable(query)
            try:
                with conn.transaction():
                    costs[query] = _cost(cur, planned, parameter_count(planned))
            except (psycopg.Error, SqlUsageError):
                pass
            finally:
                cur.execute("DEALLOCATE ALL")
    return costs, existing
