"""The one candidate loop both index advisors run: for each statement, its cost as it is and
with each candidate index, through a planner (PostgreSQL with HypoPG, or SQLite's what-if
copy). Pure but for the planner it is given; `choose` then picks from what it measured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from loadwise.analysis.indexes.choose import ASSUMED_RANGE_SELECTIVITY, Candidate, Effect, ExistingIndex, Statement, covered
from loadwise.analysis.indexes.usage import SqlUsageError, TableUsage, candidate_columns, plannable
from loadwise.analysis.redact import redact


class Planner(Protocol):
    """What a database must answer for the loop."""

    concurrently: bool  # whether its CREATE INDEX statements may say CONCURRENTLY
    qualified: bool  # whether its table names are schema-qualified SQL (see Candidate.qualified)
    errors: tuple[type[Exception], ...]  # its errors that skip one statement, not the analysis

    def usage(self, query: str) -> dict[str, TableUsage]: ...  # raises SqlUsageError

    def parameters(self, query: str) -> int: ...

    def isolated(self) -> AbstractContextManager[None]: ...  # one statement's work; a failure undone

    def cost(self, query: str, params: int) -> float: ...

    def cost_with_index(self, table: str, columns: tuple[str, ...], query: str, params: int) -> tuple[float, int | None]:
        ...  # (cost, the index's estimated size in bytes or None)


def measure(statements: list[Statement], planner: Planner, indexes: list[ExistingIndex],
            ) -> tuple[list[Candidate], list[dict[str, str]]]:  # fmt: skip
    """Every candidate index with its effect on each statement, and the statements skipped with
    why; a column list an existing index already serves (leftmost prefix) is not tried."""
    existing: dict[str, list[tuple[str, ...]]] = {}
    for index in indexes:
        existing.setdefault(index.table, []).append(index.columns)
    candidates: dict[tuple[str, tuple[str, ...]], Candidate] = {}
    skipped: list[dict[str, str]] = []
    for statement in statements:
        # Only pg_stat_statements' normalized text has `timestamptz $1` forms to rewrite; a log's or a
        # file's statements carry their constants. The statement keeps its own text either way.
        query = plannable(statement.query) if statement.source == "pg_stat_statements" else statement.query
        try:
            usage = planner.usage(query)
            params = planner.parameters(query)
        except SqlUsageError as exc:
            skipped.append({"query": statement.query, "reason": str(exc), "source": statement.source})
            continue
        if not usage:
            continue
        try:
            with planner.isolated():
                before = planner.cost(query, params)
                for table, columns in _untried(usage, existing):
                    after, size = planner.cost_with_index(table, columns, query, params)
                    candidate = candidates.setdefault((table, columns), Candidate(table, columns, size, concurrently=planner.concurrently,
                                                                                     qualified=planner.qualified))
                    ranges = params and set(columns) & set(usage[table].range)
                    candidate.effects.append(Effect(statement, before, after, ASSUMED_RANGE_SELECTIVITY if ranges else None))
        except planner.errors as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            skipped.append({"query": statement.query, "reason": redact(first), "source": statement.source})
    return list(candidates.values()), skipped


def _untried(usage: dict[str, TableUsage], existing: dict[str, list[tuple[str, ...]]]) -> Iterator[tuple[str, tuple[str, ...]]]:
    for table, table_usage in usage.items():
        for columns in candidate_columns(table_usage):
            if not covered(columns, existing.get(table, [])):
                yield table, columns
