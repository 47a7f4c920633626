"""Index advice from measured statement costs: candidates, a greedy choice, what to drop.

Pure: statements with their pg_stat_statements figures and planner costs (with and
without each hypothetical index) in, recommendations carrying that evidence out. The I/O
(reading PostgreSQL, HypoPG) lives in `loadwise.analysis.indexes.postgres`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from loadwise.analysis.indexes.settings import IndexAdvisorSettings
from loadwise.analysis.indexes.usage import qualified, quote


@dataclass
class Statement:
    queryid: int
    query: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int
    # where it was read: pg_stat_statements (constants as parameters, planned generically), or
    # with its constants from a PostgreSQL log or a statements file (loadwise.analysis.indexes.sources)
    source: str = "pg_stat_statements"


# PostgreSQL's selectivity for a comparison with a value it cannot see (selfuncs.h:
# DEFAULT_INEQ_SEL, DEFAULT_RANGE_INEQ_SEL): what a generic plan's range costs rest on.
ASSUMED_RANGE_SELECTIVITY = ("its range on a parameter is costed with PostgreSQL's default selectivity (one bound: "
                             "a third of the rows; both bounds: 0.5 %), as the real values are unknown")


@dataclass
class Effect:
    """What one candidate index does to one statement's estimated cost."""

    statement: Statement
    cost_before: float
    cost_after: float
    assumed: str | None = None  # what the generic plan assumed for unknown parameter values, when it matters

    @property
    def cut(self) -> float:
        return 1 - self.cost_after / self.cost_before if self.cost_before > 0 else 0.0

    @property
    def benefit_ms(self) -> float:
        """Time the statement spent, scaled by the planner's cut: what the index may save."""
        return self.statement.total_ms * self.cut


@dataclass
class Partitioning:
    """A partitioned table: its schema and name, and its partitions'. PostgreSQL cannot build
    an index on it CONCURRENTLY, so the advice builds one per partition and attaches them."""

    schema: str
    name: str
    partitions: list[tuple[str, str]]
    nested: bool  # a partition is itself partitioned: the per-partition recipe does not reach its leaves

    def statements(self, columns: tuple[str, ...]) -> str:
        cols = ", ".join(quote(c) for c in columns)
        parent = qualified(self.schema, self.name)
        if self.nested or not self.partitions:
            return f"CREATE INDEX ON {parent} ({cols});"
        suffix = "_".join(columns) + "_idx"
        index = f"{self.name}_{suffix}"[:63]
        lines = [f"CREATE INDEX {quote(index)} ON ONLY {parent} ({cols});"]
        for schema, name in self.partitions:
            part_index = f"{name}_{suffix}"[:63]
            lines.append(f"CREATE INDEX CONCURRENTLY {quote(part_index)} ON {qualified(schema, name)} ({cols});")
            lines.append(f"ALTER INDEX {qualified(self.schema, index)} ATTACH PARTITION {qualified(schema, part_index)};")
        return "\n".join(lines)

    @property
    def note(self) -> str:
        if self.nested or not self.partitions:
            return (f"{qualified(self.schema, self.name)} is partitioned (and so is one of its partitions): PostgreSQL cannot "
                    "build its index CONCURRENTLY; this plain CREATE INDEX blocks writes to every partition while it builds")
        return (f"{qualified(self.schema, self.name)} is partitioned: PostgreSQL cannot build its index CONCURRENTLY, so "
                "these statements build one per partition without blocking writes and attach each to an index created "
                "ON ONLY the parent (valid once every partition's is attached)")


@dataclass
class Candidate:
    table: str
    columns: tuple[str, ...]
    size_bytes: int | None = None
    effects: list[Effect] = field(default_factory=list)
    concurrently: bool = True  # PostgreSQL builds it without blocking writes; SQLite has no such option
    qualified: bool = True  # `table` is a schema-qualified SQL name (PostgreSQL); else a bare name to quote (SQLite)
    wider_rejected: list[dict[str, Any]] = field(default_factory=list)  # evidence: wider indexes not worth it
    partitioning: Partitioning | None = None  # the table is partitioned (PostgreSQL)

    @property
    def create_statement(self) -> str:
        if self.partitioning is not None:
            return self.partitioning.statements(self.columns)
        cols = ", ".join(quote(c) for c in self.columns)
        if self.qualified:  # as Dexter writes it: PostgreSQL names the index itself, in the table's schema
            return f"CREATE INDEX {_concurrently(self.concurrently)}ON {self.table} ({cols});"
        name = quote(f"{self.table}_{'_'.join(self.columns)}_idx"[:63])
        return f"CREATE INDEX {_concurrently(self.concurrently)}{name} ON {quote(self.table)} ({cols});"


def _concurrently(concurrently: bool) -> str:
    return "CONCURRENTLY " if concurrently else ""


def covered(columns: tuple[str, ...], existing: list[tuple[str, ...]]) -> bool:
    """An existing index whose leading columns are `columns` serves the same lookups."""
    return any(index[: len(columns)] == columns for index in existing)


WIDER_INDEX_CUT = 0.5  # a further column must halve the cost again (Dexter's rule) to be worth keeping


def narrow_over_wide(candidates: list[Candidate]) -> list[Candidate]:
    """Drop a multi-column candidate unless, for some statement, its cost is at most half of
    what the index on its leading columns gives; the narrower one keeps the rejected cost as evidence."""
    by_key = {(c.table, c.columns): c for c in candidates}
    kept = []
    for wide in sorted(candidates, key=lambda c: len(c.columns), reverse=True):
        narrow = by_key.get((wide.table, wide.columns[:-1])) if len(wide.columns) > 1 else None
        if narrow is None:
            kept.append(wide)
            continue
        narrow_after = {e.statement.queryid: e.cost_after for e in narrow.effects}
        pairs = [(e.cost_after, narrow_after[e.statement.queryid]) for e in wide.effects if e.statement.queryid in narrow_after]
        if any(after <= WIDER_INDEX_CUT * before for after, before in pairs):
            kept.append(wide)
        else:
            narrow.wider_rejected.append({"columns": list(wide.columns), "cost_after": sum(a for a, _ in pairs),
                                          "narrow_cost_after": sum(b for _, b in pairs)})  # fmt: skip
    return sorted(kept, key=lambda c: (c.table, c.columns))


def choose(candidates: list[Candidate], settings: IndexAdvisorSettings) -> list[Candidate]:
    """Greedy: take the index that saves the most statement time, then the next on what
    is left. A statement already served well by a chosen index counts no more. Wider
    indexes that do not halve the cost again are left out first (narrow_over_wide)."""
    pool = [c for c in narrow_over_wide(candidates) if any(e.cut >= settings.min_cut for e in c.effects)]
    chosen: list[Candidate] = []
    served: dict[int, float] = {}  # queryid -> best cut so far
    while pool and len(chosen) < settings.max_indexes:

        def gain(c: Candidate) -> float:
            return sum(e.statement.total_ms * max(e.cut - served.get(e.statement.queryid, 0.0), 0.0)
                       for e in c.effects if e.cut >= settings.min_cut)  # fmt: skip

        # Prefer fewer columns on ties: a narrower index is cheaper to keep.
        best = max(pool, key=lambda c: (gain(c), -len(c.columns)))
        if gain(best) <= 0:
            break
        chosen.append(best)
        pool.remove(best)
        for e in best.effects:
            if e.cut >= settings.min_cut:
                served[e.statement.queryid] = max(served.get(e.statement.queryid, 0.0), e.cut)
    return chosen


@dataclass
class IndexRecommendation:
    """One index to create, with the statements it helps and their planner costs with and without it."""

    table: str
    columns: list[str]
    create_statement: str
    notes: list[str]
    size_bytes: int | None  # HypoPG's estimate (None where the database cannot say)
    wider_rejected: Any  # e.g. (a, b) cost 8 against (a)'s 10: not worth a column
    cost_before: float  # summed over the statements it helps
    cost_after: float
    statements: list[dict[str, Any]]  # query, calls, total_ms, mean_ms, cost_before, cost_after, cut, assumed_selectivity


def recommendation(candidate: Candidate, settings: IndexAdvisorSettings) -> IndexRecommendation:
    helped = [e for e in candidate.effects if e.cut >= settings.min_cut]
    return IndexRecommendation(
        table=candidate.table,
        columns=list(candidate.columns),
        create_statement=candidate.create_statement,
        notes=([candidate.partitioning.note] if candidate.partitioning else [])
        + [f"{e.statement.query[:80]}: {e.assumed}" for e in helped if e.assumed],
        size_bytes=candidate.size_bytes,
        wider_rejected=candidate.wider_rejected,
        cost_before=sum(e.cost_before for e in helped),
        cost_after=sum(e.cost_after for e in helped),
        statements=[
            {"query": e.statement.query, "calls": e.statement.calls, "total_ms": round(e.statement.total_ms, 3),
             "mean_ms": round(e.statement.mean_ms, 3), "cost_before": e.cost_before, "cost_after": e.cost_after,
             "cut": round(e.cut, 4), "assumed_selectivity": e.assumed, "source": e.statement.source}
            for e in sorted(helped, key=lambda e: -e.statement.total_ms)
        ],  # fmt: skip
    )


@dataclass
class IndexAdvice:
    """The index advisor's answer (PostgreSQL or SQLite): indexes to create with their evidence,
    indexes to drop with the reason, tables read by sequential scans, and statements it could not plan."""

    indexes: list[IndexRecommendation]
    drop: list[dict[str, Any]]
    seq_scans: list[dict[str, Any]]
    statements_considered: int
    skipped: list[dict[str, Any]]  # query, reason
    settings: dict[str, Any]
    cost_unit: str | None = None  # what the costs count when not PostgreSQL's planner cost
    window: str | None = None  # which statistics the statements came from

    def to_dict(self) -> dict[str, Any]:
        """summary.json's `database` object (its keys as they have always been)."""
        return {k: v for k, v in asdict(self).items() if v is not None or k not in ("cost_unit", "window")}


@dataclass
class ExistingIndex:
    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool
    scans: int
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def droppable(indexes: list[ExistingIndex], concurrently: bool = True, qualified: bool = True,
              stats_age_s: float | None = None, min_stats_age_s: float = 0.0) -> list[dict[str, Any]]:  # fmt: skip
    """Unused indexes (no scan since the statistics were reset) and duplicates (one a
    leading prefix of another on the same table); unique indexes (and any backing a
    constraint) are never suggested. An unused index is advised for dropping only when the
    statistics are at least `min_stats_age_s` old (`stats_age_s`, None: not known, as SQLite);
    younger, it is listed without a statement. `qualified`: index names are schema-qualified
    SQL already (PostgreSQL), else bare (SQLite)."""
    age = {} if stats_age_s is None else {"stats_age_s": round(stats_age_s), "stats_age": _age(stats_age_s)}
    out = []
    for index in indexes:
        if index.unique:
            continue
        drop = f"DROP INDEX {_concurrently(concurrently)}{index.name if qualified else quote(index.name)};"
        longer = [o for o in indexes if o is not index and o.table == index.table
                  and len(o.columns) >= len(index.columns) and o.columns[: len(index.columns)] == index.columns
                  and (len(o.columns) > len(index.columns) or o.name < index.name)]  # fmt: skip
        if longer:
            out.append(index.to_dict() | age | {"reason": f"duplicate: {longer[0].name} starts with the same columns",
                                                "drop_statement": drop})  # fmt: skip
        elif index.scans == 0 and stats_age_s is not None and stats_age_s < min_stats_age_s:
            out.append(index.to_dict() | age | {"drop_statement": None,
                       "reason": f"no index scan, but the statistics are only {_age(stats_age_s)} old (under "
                                 f"{_age(min_stats_age_s)}): too young to tell an unused index, not advised"})  # fmt: skip
        elif index.scans == 0:
            since = f"in the {_age(stats_age_s)} since the statistics were reset" if stats_age_s is not None else "since the statistics were reset"
            out.append(index.to_dict() | age | {"reason": f"unused: no index scan {since}", "drop_statement": drop})
    return out


def _age(seconds: float) -> str:
    days, hours = divmod(int(seconds) // 3600, 24)
    return f"{days} d {hours} h" if days else f"{hours} h {int(seconds) % 3600 // 60} min"
