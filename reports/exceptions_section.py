"""The report's exceptions section: what the locustfile's tasks raised, grouped as Locust
groups them (by traceback), most frequent first, one traceback each."""

from __future__ import annotations

from loadwise.reports.data import RunData
from loadwise.reports.sections import SectionContent, Table, register

SHOWN_TRACEBACK_LINES = 12  # the end of a traceback says where it was raised


class ExceptionsSection:
    id = "exceptions"
    title = "Exceptions in tasks"
    order = 45

    def build(self, run: RunData, baseline: RunData | None) -> SectionContent:
        frame = run.exceptions
        if frame.empty:
            return SectionContent(headline="No task raised an exception.")
        rows = []
        for row in frame.itertuples(index=False):
            lines = str(row.traceback).rstrip().splitlines()
            shown = "\n".join(lines[-SHOWN_TRACEBACK_LINES:])
            rows.append([int(row.count), str(row.message), shown, str(row.nodes)])
        total = int(frame["count"].sum())
        return SectionContent(
            headline=f"{total} exception(s) of {len(frame)} kind(s) raised in tasks",
            tables=[Table(["count", "message", "traceback (last lines)", "nodes"], rows)],
            notes=["A task that raises ends that task's iteration; the request it was making may not have been sent."],
        )


register(ExceptionsSection())
