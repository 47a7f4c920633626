"""The report's capacity section: measured steps, the fitted curve with its band, the knee
and the SLO-bound capacity, from summary.json["capacity"] (written by `loadwise capacity`)."""

from __future__ import annotations

import numpy as np

from loadwise.capacity.models import MODELS, SIGNIFICANCE, CapacityError
from loadwise.capacity.planning import CapacityPlan
from loadwise.reports import charts
from loadwise.reports.data import RunData
from loadwise.reports.sections import SectionContent, Table, register, shown


def _chart(plan: CapacityPlan) -> str | None:
    name = plan.model.get("model")
    if len(plan.points) < 2 or name not in MODELS:
        return None
    n = np.array([p["concurrency"] for p in plan.points])
    x = np.array([p["rps"] for p in plan.points])
    try:
        model = MODELS[name]().fit(n, x)
    except CapacityError:
        return None
    grid = np.linspace(min(1.0, n.min()), n.max() * 1.5, 200)
    low, high = model.band(grid)
    fig, ax = charts.plt.subplots(figsize=(9, 3.4))
    ax.fill_between(grid, low, high, color=charts.BLUE, alpha=0.15, label="95% band")
    ax.plot(grid, model.predict(grid), color=charts.BLUE, label=f"{name} fit")
    ax.scatter(n, x, color=charts.GREY, zorder=3, label="measured steps")
    if plan.knee:
        ax.axvline(plan.knee.concurrency, color=charts.ORANGE, linestyle=":", label=f"knee {shown(plan.knee.concurrency, '.1f')}")
    if plan.slo and plan.slo.capacity_rps:
        ax.axhline(plan.slo.capacity_rps, color=charts.RED, linestyle="--",
                   label=f"{plan.slo.slo}: {shown(plan.slo.capacity_rps, '.0f')} req/s")  # fmt: skip
    ax.set_xlabel("concurrency" + {"littles_law": " (X·R, Little's law)", "littles_law_service": " in the target (X·S, Little's law)"}
                  .get(plan.concurrency_source, " (users)"))  # fmt: skip
    ax.set_ylabel("requests/s")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Throughput against concurrency")
    return charts.to_uri(fig)


class CapacitySection:
    id = "capacity"
    title = "Capacity"
    order = 100

    def build(self, run: RunData, baseline: RunData | None) -> SectionContent:
        block = run.summary.get("capacity")
        if not isinstance(block, dict) or "model" not in block:
            return SectionContent(notes=["No capacity analysis for this run yet: run `loadwise capacity RUN` on a step run."],
                                  empty=True)  # fmt: skip
        plan = CapacityPlan.from_dict(block)
        model, slo, replicas = plan.model, plan.slo, plan.replicas
        headline = f"Model {model.get('model', '?')} (R² {shown(model.get('r_squared'), '.3f')})"
        if slo and slo.capacity_rps is not None:
            headline += f"; SLO {slo.slo} holds up to {shown(slo.capacity_rps, '.1f')} req/s"
        elif slo:
            headline += f"; no step met the SLO {slo.slo}"
        if replicas:
            headline += f"; {replicas.replicas} replicas for {shown(replicas.target_rps, 'g')} req/s with {shown(replicas.margin, '.0%')} margin"
        intervals = model.get("conf_int") or {}
        params = [[k, shown(model[k], ".6g"), f"[{shown((intervals.get(k) or [None, None])[0], '.4g')}, "
                   f"{shown((intervals.get(k) or [None, None])[1], '.4g')}]"]
                  for k in ("lambda", "sigma", "kappa") if model.get(k) is not None]  # fmt: skip
        offered = any("offered_rps" in p for p in plan.points)  # a step-rate run: offered against achieved
        steps = [[p.get("step"), shown(p.get("users"), ".0f"), shown(p.get("concurrency"), ".1f")]
                 + ([shown(p.get("offered_rps"), ".1f")] if offered else []) + [shown(p.get("rps"), ".1f"), shown(p.get("p95_ms"), ".1f")]
                 for p in plan.points]  # fmt: skip
        step_columns = ["step", "users", "concurrency"] + (["offered req/s", "achieved req/s"] if offered else ["req/s"]) + ["p95 ms"]
        knee = plan.offered_knee
        if knee and knee.after_step:
            headline += f"; knee between steps {knee.after_step} and {knee.step} ({knee.reason})"
        compared = [[k, shown(v.get("aicc"), ".1f"), shown(v.get("r_squared"), ".4f")] for k, v in plan.alternatives.items()]
        notes = [slo.note] if slo and slo.note else []
        if model and model.get("peak_concurrency") is None:
            notes.append("No peak: the fitted model keeps rising over the measured steps (add higher steps to find it).")
        if replicas:
            notes.append(f"Replicas assume {replicas.assumption}.")
        notes += [f"Warning: {w}" for w in plan.warnings]
        chart = _chart(plan)
        return SectionContent(
            headline=headline,
            charts=[("throughput against concurrency with the fitted model", chart)] if chart else [],
            tables=[Table(["parameter", "value", "95% CI"], params, "Fitted parameters"),
                    Table(step_columns, steps, "Steady steps"),
                    Table(["model", "AICc", "R²"], compared,
                          f"Models compared (a richer model is kept only when the F-test says it fits significantly better, p < {SIGNIFICANCE})")],
            notes=notes,
        )  # fmt: skip


register(CapacitySection())
