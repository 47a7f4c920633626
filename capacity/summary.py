"""A run's capacity answer: computed from its run directory and said in plain text."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from loadwise.analysis.rundir import RunDir
from loadwise.analysis.steps import STEP_SHAPES, step_table
from loadwise.capacity.models import SIGNIFICANCE, CapacityError
from loadwise.capacity.planning import CapacityPlan, CapacitySettings, plan

def analyze(path: Path, settings: CapacitySettings) -> CapacityPlan:
    """Plan from a step or step-rate run (the caller stores it with the run)."""
    run_dir = RunDir(path)
    info = run_dir.read_info()
    if info.shape not in STEP_SHAPES:
        raise CapacityError(f"{path}: a capacity analysis needs a step or step-rate run (this run's shape is {info.shape or 'none'})")
    return plan(step_table(info, run_dir.read_intervals(), run_dir.read_iterations()), settings)


CONCURRENCY_SOURCES = {
    "users": "users per step",
    "littles_law": "measured concurrency X·R (Little's law; users think between requests)",
    "littles_law_service": "requests in the target X·S (Little's law on the service time; open model)",
}


def _num(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "none"
    return f"{value:,.{digits}f}{unit}"


def model_text(model: dict[str, Any]) -> str:
    lines = [f"model: {model['model']}  (R² {_num(model.get('r_squared'), digits=4)})"]
    for name in ("lambda", "sigma", "kappa"):
        if model.get(name) is not None:
            low, high = model["conf_int"][name]
            lines.append(f"  {name:<7}{model[name]:.6g}   95% CI [{low:.6g}, {high:.6g}]")
    lines.append(f"  peak concurrency {_num(model.get('peak_concurrency'))}, peak throughput {_num(model.get('peak_throughput'))}")
    return "\n".join(lines)


def plan_text(result: CapacityPlan) -> str:
    lines = [f"concurrency: {CONCURRENCY_SOURCES[result.concurrency_source]}", "steady steps:"]
    for p in result.points:
        offered = f"offered {p['offered_rps']:.1f} req/s, achieved " if "offered_rps" in p else ""
        lines.append(f"  step {p['step']}: users {p['users']:.0f}, concurrency {p['concurrency']:.1f}, "
                     f"{offered}{p['rps']:.1f} req/s, p95 {p['p95_ms']:.1f} ms")  # fmt: skip
    lines.append(model_text(result.model))
    others = ", ".join(f"{k} AICc {v['aicc']:.1f}" for k, v in result.alternatives.items())
    lines.append(f"  compared: {others} (a richer model is kept only when the F-test says it fits significantly "
                 f"better, p < {SIGNIFICANCE})")
    k = result.offered_knee
    if k:
        lines.append(f"knee (offered against achieved): step {k.step}, {k.reason}"
                     + (f"; step {k.after_step} kept up at {k.achieved_rps[0]:.1f} req/s" if k.after_step else
                        "; already at the first step: start lower"))  # fmt: skip
    elif result.concurrency_source == "littles_law_service":
        lines.append("knee (offered against achieved): none; every step achieved what it was offered (offer more)")
    if result.knee:
        lines.append(f"knee: concurrency {result.knee.concurrency:.1f} at {result.knee.throughput:.1f} req/s "
                     f"(one more unit adds < {result.knee.fraction:.0%} of the first one's throughput)")  # fmt: skip
    else:
        lines.append("knee: none within twice the measured load")
    if result.slo:
        lines.append(f"SLO {result.slo.slo}: capacity {_num(result.slo.capacity_rps, ' req/s')}; {result.slo.note}")
    if result.replicas:
        r = result.replicas
        lines.append(f"headroom at {r.target_rps:g} req/s as run: {r.headroom_now:.0%}"
                     f"{' (overloaded)' if r.headroom_now < 0 else ''}")
        lines.append(f"replicas for {r.target_rps:g} req/s with {r.margin:.0%} margin: {r.replicas} "
                     f"(per instance {r.per_instance_rps:.1f} req/s, headroom {r.headroom_planned:.0%}; "
                     f"assumes {r.assumption})")  # fmt: skip
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)
