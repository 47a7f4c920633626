"""The report's checks section: loadwise.check()'s named assertions per endpoint, failing first."""

from __future__ import annotations

from loadwise.reports.data import RunData
from loadwise.reports.sections import SectionContent, Table, register


class ChecksSection:
    id = "checks"
    title = "Checks"
    order = 44

    def build(self, run: RunData, baseline: RunData | None) -> SectionContent:
        checks = run.info.checks
        passes, fails = sum(c["passes"] for c in checks), sum(c["fails"] for c in checks)
        if passes + fails == 0:
            return SectionContent(notes=["call `loadwise.check(response, {name: predicate})` in a task (docs/running.md#checks)"],
                                  empty=True)  # fmt: skip
        rows = [[c["method"], c["name"], c["check"], c["passes"], c["fails"], f"{c['passes'] / ((c['passes'] + c['fails']) or 1):.2%}"]
                for c in sorted(checks, key=lambda c: (-c["fails"], c["name"], c["check"]))]  # fmt: skip
        return SectionContent(
            headline=f"{passes / (passes + fails):.2%} of {passes + fails} checks passed ({fails} failed)",
            tables=[Table(["method", "endpoint", "check", "passed", "failed", "share"], rows)],
            notes=["A failed check does not fail its request; `checks>99%` as a threshold does fail the run's verdict."],
        )


register(ChecksSection())
