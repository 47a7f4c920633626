"""The report's open-model section (rate shapes): what was offered and what was achieved per
interval, iterations late and dropped, latency from the intended start beside the service
time, and whether the load generator itself was the limit."""

from __future__ import annotations

from typing import Any

import pandas as pd

from loadwise.reports import charts
from loadwise.reports.data import RunData
from loadwise.reports.sections import SectionContent, Table, register, shown

LATENCIES = ("p50", "p95", "p99")


def _chart(run: RunData) -> str | None:
    frame = run.iterations
    if frame.empty:
        return None
    t0 = run.t0
    seconds = [max(t.timestamp() - t0, 0.0) for t in frame["start"]]
    per_s = frame["interval_s"].astype(float)
    achieved = run.intervals.groupby("start")["requests"].sum()
    achieved = achieved.reindex(frame["start"]).fillna(0).to_numpy() / per_s.to_numpy()
    fig, ax = charts.plt.subplots(figsize=(9, 3.2))
    ax.plot(seconds, frame["scheduled"] / per_s, color=charts.GREY, linestyle=":", label="offered (iterations/s)")
    ax.plot(seconds, frame["started"] / per_s, color=charts.BLUE, label="started (iterations/s)")
    ax.plot(seconds, achieved, color=charts.GREEN, label="achieved (requests/s)")
    ax.plot(seconds, frame["dropped"] / per_s, color=charts.RED, label="dropped (iterations/s)")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("per second")
    offered = (frame["scheduled"] / per_s).max()
    ax.set_ylim(0, max(offered, achieved.max()) * 1.3)  # arrivals dropped at the end (the run ended) would dwarf the rest
    late = charts.right_axis(ax, "mean start lateness ms")
    late.plot(seconds, pd.to_numeric(frame["lateness_mean_ms"], errors="coerce"), color=charts.ORANGE, label="start lateness (mean ms)")
    charts.legend_two_axes(ax, late, loc="upper left", fontsize=8)
    ax.set_title("Offered against achieved, per interval")
    return charts.to_uri(fig)


def _latency_row(label: str, stats: dict[str, Any]) -> list[Any]:
    return [label, stats.get("requests")] + [
        cell for q in LATENCIES for cell in (shown(stats.get(f"{q}_ms"), ".1f"), shown(stats.get(f"service_{q}_ms"), ".1f"))
    ]


class OpenModelSection:
    id = "open-model"
    title = "Open model: arrivals and latency from the intended start"
    order = 40

    def build(self, run: RunData, baseline: RunData | None) -> SectionContent:
        record = run.info.open_model
        if not record and any(s.get("open_model") for s in run.info.scenarios):
            return SectionContent(notes=["Each rate scenario's iterations and dropped iterations are in Scenarios side by side."],
                                  empty=True)  # fmt: skip
        if not record:
            return SectionContent(notes=["A closed-model run (users that wait for their responses). A rate shape "
                                         "(--shape constant-rate|ramping-rate|step-rate --rate R) measures latency from "
                                         "each request's intended start."], empty=True)  # fmt: skip
        params = run.info.shape_params or {}
        headline = (f"{record.get('scheduled', 0):,} iterations scheduled ({params.get('arrivals', '?')} arrivals, "
                    f"peak {shown(params.get('rate'), 'g')}/s): {record.get('started', 0):,} started, "
                    f"{record.get('late', 0):,} of them late, {record.get('dropped', 0):,} dropped")  # fmt: skip
        generator = record.get("generator") or {}
        notes = [
            "Latencies in this report (p50, p95, p99 ...) are measured from when each request should have been sent: "
            "its service time plus its iteration's start lateness, so a stalled target cannot hide behind stalled users. "
            "The service columns are send-to-response alone.",
            f"An arrival that found no free user waited up to {shown(record.get('max_lateness_s'), 'g')} s, then was "
            f"dropped; arrivals still waiting when the run ended are dropped too."
            + (f" Poisson seed {record.get('seed')}." if params.get("arrivals") == "poisson" else ""),
        ]
        if generator.get("saturated"):
            notes.insert(0, f"Warning: the load generator was saturated: {generator.get('evidence')}. Lateness and "
                            "dropped iterations may be the generator's limit, not the target's: add workers or lower the rate.")  # fmt: skip
        else:
            notes.append(f"The generator kept its schedule: {generator.get('evidence', 'no evidence recorded')}.")
        overall = run.summary.get("overall") or {}
        rows = [_latency_row("all", overall)] + [
            _latency_row(f"{e.get('method')} {e.get('name')}", e) for e in run.summary.get("endpoints", []) if isinstance(e, dict)
        ]
        columns = ["endpoint", "requests"] + [c for q in LATENCIES for c in (f"{q} ms (intended)", f"{q} ms (service)")]
        chart = _chart(run)
        return SectionContent(
            headline=headline,
            charts=[("offered against achieved rate per interval, with dropped iterations and start lateness", chart)] if chart else [],
            tables=[Table(columns, rows, "Latency from the intended start beside the service time")],
            notes=notes,
        )


register(OpenModelSection())
