"""The report's database section: indexes to create and to drop, and sequentially scanned
tables, from summary.json["database"] (`loadwise advise db RUN`), each with its evidence."""

from __future__ import annotations

from typing import Any

from loadwise.reports.data import RunData
from loadwise.reports.sections import MISSING, SectionContent, Table, block_content, register, shown

HOW_TO_FILL = "No database advice for this run: `loadwise advise db RUN --dsn-env NAME` adds it."


def _rows(block: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [r for r in block.get(key) or [] if isinstance(r, dict)]


class DatabaseSection:
    id = "database"
    title = "Database indexes"
    order = 115

    def build(self, run: RunData, baseline: RunData | None) -> SectionContent:
        block = run.summary.get("database")
        if not isinstance(block, dict):
            return SectionContent(notes=[HOW_TO_FILL], empty=True)
        if "tables" in block:  # a summary written before the advisor stored its raw result
            return block_content(block)
        indexes, drops, scans = _rows(block, "indexes"), _rows(block, "drop"), _rows(block, "seq_scans")
        unit = block.get("cost_unit", "planner cost")
        create = [[r.get("table"), ", ".join(map(str, r.get("columns") or [])),
                   f"{shown(r.get('cost_before'), '.0f')} -> {shown(r.get('cost_after'), '.0f')}",
                   len(r.get("statements") or []), shown(sum(s.get("total_ms", 0) for s in r.get("statements") or []), ".0f"),
                   MISSING if r.get("size_bytes") is None else f"{r['size_bytes'] / 1e6:.1f} MB", r.get("create_statement")]
                  for r in indexes]  # fmt: skip
        tables = [
            Table(["table", "columns", unit, "statements", "their time ms", "size", "statement"], create,
                  f"Indexes to create ({unit} of the statements they help, before -> after)"),
            Table(["table", "index", "reason", "statistics age", "statement"],
                  [[d.get("table"), d.get("name"), d.get("reason"), d.get("stats_age") or MISSING, d.get("drop_statement") or "(not advised)"]
                   for d in drops],
                  "Indexes to consider dropping"),
            Table(["table", "seq scans", "rows read", "rows per scan"],
                  [[s.get("table"), s.get("seq_scans"), s.get("rows_read"), s.get("rows_per_scan")] for s in scans],
                  "Tables read by sequential scans"),
        ]  # fmt: skip
        skipped = _rows(block, "skipped")
        if skipped:
            tables.append(Table(["statement", "why it was not planned"],
                                [[" ".join(str(s.get("query", "")).split())[:200], s.get("reason")] for s in skipped],
                                "Statements not planned"))  # fmt: skip
        notes = [f"Costs are the planner's estimates ({unit}) for generic plans, measured with hypothetical indexes."]
        for r in indexes:
            notes += [f"{r.get('table')} ({', '.join(map(str, r.get('columns') or []))}): {note}" for note in r.get("notes") or []]
            for wider in r.get("wider_rejected") or []:
                notes.append(f"{r.get('table')} ({', '.join(map(str, wider.get('columns') or []))}) would cost "
                             f"{shown(wider.get('cost_after'), '.0f')} against {shown(wider.get('narrow_cost_after'), '.0f')} "
                             f"with ({', '.join(map(str, r.get('columns') or []))}): a further column must halve the cost to be advised.")  # fmt: skip
        if block.get("window"):
            notes.append(f"Statements: {block['window']}.")
        return SectionContent(
            headline=f"{len(indexes)} index(es) to create, {len(drops)} to consider dropping, "
                     f"from {shown(block.get('statements_considered'))} statements",
            tables=tables, notes=notes,
        )  # fmt: skip


register(DatabaseSection())
