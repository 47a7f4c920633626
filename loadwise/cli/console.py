"""Plain-text rendering for the terminal (no computation here)."""

from __future__ import annotations

from typing import Any


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def endpoint_table(summary: dict[str, Any]) -> str:
    """Per-endpoint requests, failures, rps and p50/p95/p99, then the overall row. A run of several
    scenarios: each scenario's endpoints and its own total (rates over the seconds it ran), then the run's."""
    header = ("endpoint", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms")
    groups: list[list[tuple[str, dict[str, Any]]]] = []
    for scenario in summary.get("scenarios") or []:
        name = scenario.get("name", "")
        rows = [(f"{name}: {ep['method']} {ep['name']}", ep) for ep in scenario.get("endpoints", [])]
        groups.append(rows + [(f"{name}: all", scenario.get("overall", {}))])
    if not groups:
        groups.append([(f"{ep['method']} {ep['name']}", ep) for ep in summary.get("endpoints", [])])
    groups.append([("all", summary.get("overall", {}))])
    cells = [[header]] + [[(
        label,
        str(s.get("requests", 0)),
        f"{s.get('failures', 0)} ({100 * (s.get('error_rate') or 0):.1f}%)",
        "-" if s.get("rps") is None else f"{s['rps']:.1f}",
        _ms(s.get("p50_ms")),
        _ms(s.get("p95_ms")),
        _ms(s.get("p99_ms")),
    ) for label, s in group] for group in groups]  # fmt: skip
    flat = [row for group in cells for row in group]
    widths = [max(len(row[i]) for row in flat) for i in range(len(header))]
    lines = []
    for n, group in enumerate(cells):
        for row in group:
            lines.append(f"{row[0].ljust(widths[0])}  " + "  ".join(cell.rjust(w) for cell, w in zip(row[1:], widths[1:])))
        if n < len(cells) - 1 and group:
            lines.append("-" * len(lines[-1]))
    return "\n".join(lines)
