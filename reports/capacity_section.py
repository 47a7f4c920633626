"""The report's capacity section: measured steps, the fitted curve with its band, the knee
and the SLO-bound capacity, from summary.json["capacity"] (written by `loadwise capacity`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from loadwise.capacity.models import MODELS, CapacityError
from loadwise.reports import charts
from loadwise.reports.data import RunData
from loadwise.reports.sections import SectionContent, Table, register


def _chart(block: dict[str, Any]) -> str | None:
    points = block.get("points") or []
    name = (block.get("model") or {}).get("model")
    if len(points) < 2 or name not in MODELS:
        return None
    n = np.array([p["concurrency"] for p in points])
    x = np.array([p["rps"] for p in points])
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
    knee = block.get("knee")
    if knee:
        ax.axvline(knee["concurrency"], color=charts.ORANGE, linestyle=":", label=f"knee {knee['concurrency']:.1f}")
    slo = block.get("slo") or {}
    if slo.get("capacity_rps"):
        ax.axhline(slo["capacity_rps"], color=charts.RED, linestyle="--", label=f"{slo['slo']}: {slo['capacity_rps']:.0f} req/s")
    ax.set_xlabel("concurrency" + (" (X·R, Little's law)" if block.get("concurrency_source") == "littles_law" else " (users)"))
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
        model = block["model"]
        slo, replicas = block.get("slo") or {}, block.get("replicas") or {}
        headline = f"Model {model['model']} (R² {model.get('r_squared') or 0:.3f})"
        if slo.get("capacity_rps") is not None:
            headline += f"; SLO {slo['slo']} holds up to {slo['capacity_rps']:.1f} req/s"
        if replicas:
            headline += f"; {replicas['replicas']} replicas for {replicas['target_rps']:g} req/s with {replicas['margin']:.0%} margin"
        params = [[k, f"{model[k]:.6g}", f"[{model['conf_int'][k][0]:.4g}, {model['conf_int'][k][1]:.4g}]"]
                  for k in ("lambda", "sigma", "kappa") if model.get(k) is not None]  # fmt: skip
        steps = [[p["step"], f"{p['users']:.0f}", f"{p['concurrency']:.1f}", f"{p['rps']:.1f}", f"{p['p95_ms']:.1f}"]
                 for p in block.get("points", [])]  # fmt: skip
        compared = [[k, f"{v.get('aicc', float('nan')):.1f}", f"{v.get('r_squared') or 0:.4f}"] for k, v in block.get("alternatives", {}).items()]
        notes = [slo["note"]] if slo.get("note") else []
        if replicas:
            notes.append(f"Replicas assume {replicas['assumption']}.")
        notes += [f"Warning: {w}" for w in block.get("warnings", [])]
        chart = _chart(block)
        return SectionContent(
            headline=headline,
            charts=[("throughput against concurrency with the fitted model", chart)] if chart else [],
            tables=[Table(["parameter", "value", "95% CI"], params, "Fitted parameters"),
                    Table(["step", "users", "concurrency", "req/s", "p95 ms"], steps, "Steady steps"),
                    Table(["model", "AICc", "R²"], compared, "Models compared (simplest kept unless AICc drops by > 2)")],
            notes=notes,
        )  # fmt: skip


register(CapacitySection())
