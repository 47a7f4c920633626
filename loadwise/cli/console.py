"""Plain-text rendering for the terminal (no computation here)."""

from __future__ import annotations

from typing import Any


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def endpoint_table(summary: dict[str, Any]) -> str:
    """Per-endpoint requests, failures, rps and p50/p95/p99, then the overall row."""
    header = ("endpoint", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms")
    rows = []
    for ep in summary.get("endpoints", []):
        rows.append((f"{ep['method']} {ep['name']}", ep))
    rows.append(("all", summary.get("overall", {})))
    cells = [header] + [
        (
            label,
            str(s.get("requests", 0)),
            f"{s.get('failures', 0)} ({100 * (s.get('error_rate') or 0):.1f}%)",
            "-" if s.get("rps") is None else f"{s['rps']:.1f}",
            _ms(s.get("p50_ms")),
            _ms(s.get("p95_ms")),
            _ms(s.get("p99_ms")),
        )
        for label, s in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        first = row[0].ljust(widths[0])
        rest = "  ".join(cell.rjust(w) for cell, w in zip(row[1:], widths[1:]))
        lines.append(f"{first}  {rest}")
        if n == 0 or n == len(cells) - 2:
            lines.append("-" * len(lines[-1]))
    return "\n".join(lines)
