"""The report's autoscaling section: the replayed trace with the replicas the recommended
and the current HPA settings would run, from summary.json["hpa"] (`loadwise advise hpa`)."""

from __future__ import annotations

from loadwise.reports import charts
from loadwise.reports.data import RunData
from loadwise.reports.sections import SectionContent, Table, register


def _chart(series: dict) -> str:
    fig, ax = charts.plt.subplots(figsize=(9, 3.2))
    hours = [t / 3600 for t in series["t"]]
    ax.step(hours, series["current"], where="post", color=charts.GREY, label="replicas, current settings")
    ax.step(hours, series["recommended"], where="post", color=charts.BLUE, label="replicas, recommended")
    ax.set_xlabel("hours into the trace")
    ax.set_ylabel("replicas")
    ax.set_ylim(bottom=0)
    load = charts.right_axis(ax, "requests/s")
    load.plot(hours, series["load"], color=charts.ORANGE, linewidth=1.0, alpha=0.8, label="load (req/s)")
    charts.legend_two_axes(ax, load, loc="upper left", fontsize=8)
    ax.set_title("HPA replay: replicas against load")
    return charts.to_uri(fig)


class HpaSection:
    id = "autoscaling"
    title = "Autoscaling (HPA)"
    order = 118

    def build(self, run: RunData, baseline: RunData | None) -> SectionContent:
        block = run.summary.get("hpa")
        if not isinstance(block, dict) or "recommended" not in block:
            return SectionContent(notes=["No autoscaling advice yet: `loadwise advise hpa RUN` adds it."], empty=True)
        rec, cur = block["recommended"], block["current"]
        rows = [[name, f"{e['target']:.0%}" if e["target"] <= 1 else f"{e['target']:g} req/s", e["min_replicas"], e["max_replicas"],
                 e["behavior"], f"{e['replica_hours']:.1f}", f"{e['slo_violation_seconds']:.0f}", e["peak_replicas"]]
                for name, e in (("recommended", rec), ("current", cur))]  # fmt: skip
        evidence = [["per-pod capacity within the SLO", f"{block['per_pod_capacity_rps']:.1f} req/s"],
                    ["CPU per request", f"{block['cpu_per_request_s'] * 1000:.2f} ms"],
                    ["CPU request per pod", f"{block['cpu_request_cores']:g} cores"],
                    ["trace", f"{block['trace']}, peak {block['peak_rps']:.0f} req/s, {block['duration_s'] / 3600:.1f} h"],
                    ["SLO violation budget", f"{block['budget_s']:.0f} s"]]  # fmt: skip
        return SectionContent(
            headline=(f"Recommended: {rec['replica_hours']:.1f} replica-hours and {rec['slo_violation_seconds']:.0f} s "
                      f"over the SLO, against {cur['replica_hours']:.1f} and {cur['slo_violation_seconds']:.0f} s now"),
            charts=[("replicas and load over the replayed trace", _chart(block["series"]))] if block.get("series") else [],
            tables=[Table(["settings", "target", "min", "max", "behavior", "replica-hours", "SLO broken s", "peak"], rows, "Side by side"),
                    Table(["evidence", "value"], evidence, "Measured inputs")],
            notes=list(block.get("notes", [])),
        )  # fmt: skip


register(HpaSection())
