"""The report's extension point: sections that later analyses fill.

A section is a small class with an `id`, a `title`, an `order` and a pure
`build(run, baseline) -> SectionContent`. Register it with `@register`; the page renders
every registered section in order with one generic template block (summary line, tables,
charts, note), so a new analysis never edits the page.

Analyses that write their results into `summary.json` can skip the class: a top-level
key holding a *report block* is shown by the matching built-in slot below:

    {"headline": "one line", "tables": [{"title": "...", "columns": [...], "rows": [[...]]}],
     "notes": ["..."]}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from loadwise.reports.data import RunData


MISSING = "–"


def shown(value: Any, spec: str = "", suffix: str = "") -> str:
    """`value` formatted with `spec`, or a dash when an analysis had no such figure (None, NaN):
    a section must render for every outcome its analysis can produce."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    try:
        return f"{value:{spec}}{suffix}"
    except (TypeError, ValueError):
        return f"{value}{suffix}"


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    title: str = ""


@dataclass
class SectionContent:
    headline: str = ""
    tables: list[Table] = field(default_factory=list)
    charts: list[tuple[str, str]] = field(default_factory=list)  # (alt text, data URI)
    notes: list[str] = field(default_factory=list)
    empty: bool = False  # nothing to show yet: the notes say why and what to run


class ReportSection(Protocol):
    id: str
    title: str
    order: int

    def build(self, run: RunData, baseline: RunData | None) -> SectionContent: ...


SECTIONS: list[ReportSection] = []


def register(section: ReportSection) -> ReportSection:
    SECTIONS.append(section)
    SECTIONS.sort(key=lambda s: s.order)
    return section


def block_content(block: Any) -> SectionContent:
    """A report block from summary.json as section content (malformed parts are skipped)."""
    if not isinstance(block, dict):
        return SectionContent(notes=["the analysis left no report block"], empty=True)
    tables = []
    for table in block.get("tables", []) or []:
        if isinstance(table, dict) and isinstance(table.get("columns"), list) and isinstance(table.get("rows"), list):
            tables.append(Table([str(c) for c in table["columns"]], [list(r) for r in table["rows"]], str(table.get("title", ""))))
    return SectionContent(headline=str(block.get("headline", "")), tables=tables,
                          notes=[str(n) for n in block.get("notes", []) or []])  # fmt: skip


@dataclass
class SummarySlot:
    """A built-in slot shown from `summary.json[key]`, or a note saying how to fill it."""

    id: str
    title: str
    order: int
    key: str
    how_to_fill: str

    def build(self, run: RunData, baseline: RunData | None) -> SectionContent:
        if self.key in run.summary:
            return block_content(run.summary[self.key])
        return SectionContent(notes=[self.how_to_fill], empty=True)


register(SummarySlot("regression", "Regression against the baseline", 110, "regression",
                     "No baseline comparison for this run: `loadwise gate RUN --baseline OTHER` or `loadwise report RUN --baseline OTHER`."))
register(SummarySlot("verification", "Advice verified", 120, "verification",
                     "No advice verified yet: apply it, run the same load again, then `loadwise verify BEFORE AFTER`."))
