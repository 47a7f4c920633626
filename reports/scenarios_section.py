"""The report's scenarios section: a run of several scenarios (`--scenarios`) side by side, each
one's load over time (its users, its requests per second) and its own statistics."""

from __future__ import annotations

from typing import Any

import pandas as pd

from loadwise.analysis.rundir import scenario_of_rows
from loadwise.reports import charts
from loadwise.reports.data import RunData
from loadwise.reports.sections import SectionContent, Table, register, shown


def _chart(run: RunData, names: list[str]) -> str | None:
    frame = run.intervals
    if frame.empty or "scenario" not in frame:
        return None
    frame = frame.assign(scenario=scenario_of_rows(frame))
    fig, (users_ax, rps_ax) = charts.plt.subplots(1, 2, figsize=(10, 3.2), sharex=True)
    t0 = run.t0
    for i, name in enumerate(names):
        rows = frame[frame["scenario"] == name]
        if rows.empty:
            continue
        per = rows.groupby("start").agg(requests=("requests", "sum"), interval_s=("interval_s", "first"),
                                        users=("scenario_users", lambda v: pd.to_numeric(v, errors="coerce").max()))  # fmt: skip
        seconds = [max(t.timestamp() - t0, 0.0) for t in per.index]
        color = charts.PALETTE[i % len(charts.PALETTE)]
        users_ax.step(seconds, per["users"], where="post", color=color, label=name)
        rps_ax.plot(seconds, per["requests"] / per["interval_s"].astype(float), color=color, label=name)
    users_ax.set_title("Users (a rate scenario: its pool)")
    rps_ax.set_title("Requests per second")
    for ax in (users_ax, rps_ax):
        ax.set_xlabel("seconds since start")
        ax.set_ylim(bottom=0)
    rps_ax.legend(fontsize=8, loc="upper left")
    return charts.to_uri(fig)


def _load(record: dict[str, Any]) -> str:
    params = record.get("params") or {}
    if params.get("rate") is not None:
        return f"{record.get('shape')} {shown(params.get('rate'), 'g')}/s"
    return f"{record.get('shape')} {params.get('users')} users"


class ScenariosSection:
    id = "scenarios"
    title = "Scenarios side by side"
    order = 12

    def build(self, run: RunData, baseline: RunData | None) -> SectionContent:
        records = run.info.scenarios
        if not records:
            return SectionContent(notes=["One scenario ran. Several at once, each with its own User classes, shape and "
                                         "start: `loadwise run --scenarios FILE` (docs/scenarios.md)."], empty=True)  # fmt: skip
        stored = {s.get("name"): s for s in run.summary.get("scenarios") or [] if isinstance(s, dict)}
        rows, endpoint_rows = [], []
        for record in records:
            name = record.get("name", "")
            summary = stored.get(name, {})
            stats = summary.get("overall") or {}
            tags = ", ".join(f"{k}={v}" for k, v in (record.get("tags") or {}).items())
            rows.append([name, _load(record), shown(record.get("start_s"), "g", " s"), shown(summary.get("duration_s"), "g", " s"),
                         stats.get("requests", 0), shown(stats.get("rps"), ".1f"), shown(stats.get("error_rate"), ".2%"),
                         shown(stats.get("p50_ms"), ".1f"), shown(stats.get("p95_ms"), ".1f"), shown(stats.get("p99_ms"), ".1f"),
                         shown(stats.get("dropped_iterations")), tags or "–"])  # fmt: skip
            for ep in summary.get("endpoints") or []:
                endpoint_rows.append([name, ep.get("method"), ep.get("name"), ep.get("requests"), shown(ep.get("rps"), ".1f"),
                                      shown(ep.get("error_rate"), ".2%"), shown(ep.get("p95_ms"), ".1f")])  # fmt: skip
        chart = _chart(run, [r.get("name", "") for r in records])
        return SectionContent(
            headline=f"{len(records)} scenarios ran at once: " + ", ".join(f"{r[0]} ({r[1]})" for r in rows),
            tables=[Table(["scenario", "load", "start", "ran", "requests", "req/s", "errors", "p50 ms", "p95 ms", "p99 ms",
                           "dropped iterations", "tags"], rows),
                    Table(["scenario", "method", "endpoint", "requests", "req/s", "errors", "p95 ms"], endpoint_rows,
                          "Endpoints per scenario")],  # fmt: skip
            charts=[("each scenario's users and requests per second over the run", chart)] if chart else [],
            notes=["A scenario's rates are over the seconds it ran (its start to its end); a rate scenario's latencies "
                   "count from each iteration's intended start. Thresholds name one with `scenario=NAME: p95<300ms`."],
        )


register(ScenariosSection())
