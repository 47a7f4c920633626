"""Answers from a step run: the model, the knee, the SLO-bound capacity, headroom, replicas.

Pure: a step table (analysis.steps) in, a `CapacityPlan` out, every number with the
points it came from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loadwise.analysis.steps import has_offered_rates
from loadwise.settings import GENERATOR_LATE_SHARE
from loadwise.capacity.settings import CapacitySettings
from loadwise.capacity.models import MODELS, CapacityError, ThroughputModel, select_model

THINK_TIME_SHARE = 0.10  # implied think time above this share of the cycle: use Little's law concurrency
LITTLE_SPREAD = 0.35  # implied think time varying more than this across steps breaks Little's law
# Open model (step-rate): a step is past the knee when it achieved less than this share below what
# was offered, or when its p95 (from the intended start) jumped by this factor over the step before:
# below capacity latency grows smoothly with the rate (queueing), past it a backlog builds.
SHORTFALL = 0.05
LATENCY_TURN = 5.0


@dataclass
class Knee:
    """Where one more unit of concurrency adds less than `fraction` of the first unit's throughput."""

    concurrency: float
    throughput: float
    fraction: float


@dataclass
class OfferedKnee:
    """Open model: the first step that fell behind what it was offered (or whose p95 turned up),
    and the step before it (None when the first step did); each list is [before, at]."""

    step: int
    after_step: int | None
    offered_rps: list[float | None]
    achieved_rps: list[float | None]
    p95_ms: list[float | None]
    reason: str


@dataclass
class SloCapacity:
    """The highest throughput whose latency statistic met the SLO, with the steps it lies between."""

    slo: str  # as "p95<=300ms"
    capacity_rps: float | None  # None: even the first step missed it
    broken_at_step: int | None  # None: every step met it
    note: str
    lower_bound: bool = False  # every step met it: the capacity is at least the last step's
    last_passing_step: int | None = None
    between_rps: list[float] | None = None  # the passing and the failing step's throughput

    def to_dict(self) -> dict[str, Any]:
        """summary.json's `slo` object: the optional keys only where they say something."""
        out = asdict(self)
        for key in ("lower_bound", "last_passing_step", "between_rps"):
            if not out[key]:
                del out[key]
        return out


@dataclass
class ReplicaPlan:
    """Replicas for a target rate, with the margin kept, assuming linear horizontal scaling."""

    target_rps: float
    per_instance_rps: float
    margin: float
    replicas: int
    headroom_now: float  # share of capacity left at the target load as deployed in the run
    headroom_planned: float  # the same with the planned replicas
    assumption: str = "linear horizontal scaling: each replica serves what one instance served in this run"


@dataclass
class CapacityPlan:
    concurrency_source: str  # "users", "littles_law" or (open model) "littles_law_service"
    points: list[dict[str, float]]
    model: dict[str, Any]
    alternatives: dict[str, dict[str, Any]]
    knee: Knee | None
    slo: SloCapacity | None
    replicas: ReplicaPlan | None
    warnings: list[str] = field(default_factory=list)
    offered_knee: OfferedKnee | None = None  # open model: the steps between which achieved fell behind offered

    def to_dict(self) -> dict[str, Any]:
        """summary.json's `capacity` object (its keys as they have always been)."""
        out = asdict(self)
        out["slo"] = self.slo.to_dict() if self.slo else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CapacityPlan:
        """A stored `capacity` object read back (a run analysed by any release since the keys were
        fixed); a malformed one raises (TypeError, KeyError), which the report shows as such."""

        def part(kind: type, value: Any) -> Any:
            if value is None:
                return None
            known = {f for f in kind.__dataclass_fields__}
            return kind(**{k: v for k, v in value.items() if k in known})

        return cls(str(data["concurrency_source"]), list(data.get("points") or []), dict(data["model"]),
                   dict(data.get("alternatives") or {}), part(Knee, data.get("knee")), part(SloCapacity, data.get("slo")),
                   part(ReplicaPlan, data.get("replicas")), list(data.get("warnings") or []),
                   part(OfferedKnee, data.get("offered_knee")))  # fmt: skip


def concurrency(steps: pd.DataFrame) -> tuple[np.ndarray, str, list[str]]:
    """Concurrency per step: users, or X·R (Little's law) when users think between requests.
    Open model (step-rate): X·S, the requests inside the target, from the service time S."""
    if has_offered_rates(steps):
        return steps["rps"].to_numpy(float) * steps["service_mean_ms"].to_numpy(float) / 1000.0, "littles_law_service", []
    x = steps["rps"].to_numpy(float)
    r = steps["mean_ms"].to_numpy(float) / 1000.0
    users = steps["users"].to_numpy(float)
    cycle = np.where(x > 0, users / np.where(x > 0, x, 1), np.nan)  # R + Z per user
    think = cycle - r
    warnings = []
    if (think < -0.05 * cycle).any():
        warnings.append("Little's law does not hold (users / throughput < response time): were requests lost or users not all active?")
    share = np.nanmedian(think / cycle)
    if share > THINK_TIME_SHARE:
        spread = float(np.nanmax(think) - np.nanmin(think)) / max(float(np.nanmedian(think)), 1e-9)
        if spread > LITTLE_SPREAD:
            warnings.append(
                f"think time implied by Little's law varies by {spread:.0%} across steps: the load generator may have "
                "been saturated, or users waited on errors"
            )
        return x * r, "littles_law", warnings
    return users, "users", warnings


def knee(model: ThroughputModel, n_max: float, fraction: float) -> Knee | None:
    """Where the marginal throughput of one more unit of load drops below `fraction` of the first one."""
    grid = np.linspace(1.0, max(n_max * 2, 2.0), 2000)
    x = model.predict(grid)
    marginal = np.gradient(x, grid)
    if marginal[0] <= 0:
        return None
    below = np.flatnonzero(marginal < fraction * marginal[0])
    if not len(below):
        return None
    i = int(below[0])
    return Knee(float(grid[i]), float(x[i]), fraction)


def offered_knee(steps: pd.DataFrame) -> OfferedKnee | None:
    """Open model: the first step that achieved less than it was offered (by more than SHORTFALL)
    or whose p95 turned up (LATENCY_TURN x the step before's), with the step before it."""
    ordered = steps.sort_values("offered_rps").reset_index(drop=True)
    for i, row in ordered.iterrows():
        before = ordered.iloc[i - 1] if i > 0 else None
        behind = row["rps"] < (1 - SHORTFALL) * row["offered_rps"]
        turned = before is not None and row["p95_ms"] > LATENCY_TURN * before["p95_ms"]
        if not (behind or turned):
            continue
        reason = (f"achieved {row['rps']:.1f} of {row['offered_rps']:.1f} req/s offered" if behind else
                  f"p95 {row['p95_ms']:.1f} ms, {row['p95_ms'] / before['p95_ms']:.1f}x the step before's")  # fmt: skip
        def pair(column: str) -> list[float | None]:
            return [None if before is None else float(before[column]), float(row[column])]

        return OfferedKnee(int(row["step"]), None if before is None else int(before["step"]), pair("offered_rps"),
                           pair("rps"), pair("p95_ms"), reason)  # fmt: skip
    return None


def slo_capacity(steps: pd.DataFrame, slo_ms: float, statistic: str = "p95") -> SloCapacity:
    """Highest throughput whose latency statistic meets the SLO, interpolated between the
    last passing and the first failing step."""
    column = f"{statistic}_ms"
    ordered = steps.sort_values("users").reset_index(drop=True)
    passing = ordered[column] <= slo_ms
    if not passing.any():
        first = ordered.iloc[0]
        return SloCapacity(f"{statistic}<={slo_ms:g}ms", None, int(first["step"]),
                           f"even the first step (users {int(first['users'])}) misses the SLO: {statistic} {first[column]:.1f} ms")  # fmt: skip
    if passing.all():
        last = ordered.iloc[-1]
        return SloCapacity(f"{statistic}<={slo_ms:g}ms", float(last["rps"]), None,
                           f"every step met the SLO; capacity is at least {last['rps']:.1f} req/s (the last step)", lower_bound=True)  # fmt: skip
    fail_at = int(np.flatnonzero(~passing.to_numpy())[0])
    if fail_at == 0:
        return slo_capacity(ordered.iloc[:1], slo_ms, statistic)
    ok, bad = ordered.iloc[fail_at - 1], ordered.iloc[fail_at]
    share = (slo_ms - ok[column]) / (bad[column] - ok[column])
    rps = float(ok["rps"] + share * (bad["rps"] - ok["rps"]))
    return SloCapacity(f"{statistic}<={slo_ms:g}ms", rps, int(bad["step"]),
                       f"step {int(bad['step'])} (users {int(bad['users'])}) broke it: {statistic} {bad[column]:.1f} ms",
                       last_passing_step=int(ok["step"]), between_rps=[float(ok["rps"]), float(bad["rps"])])  # fmt: skip


def replicas_needed(target_rps: float, per_instance_rps: float, margin: float, replicas_now: int = 1) -> ReplicaPlan:
    needed = max(math.ceil(target_rps * (1 + margin) / per_instance_rps), 1)
    return ReplicaPlan(target_rps, per_instance_rps, margin, needed, 1 - target_rps / (replicas_now * per_instance_rps),
                       1 - target_rps / (needed * per_instance_rps))  # fmt: skip


def generator_notes(steps: pd.DataFrame) -> list[str]:
    """A warning naming the step-rate steps where the load generator scheduled more than
    GENERATOR_LATE_SHARE of the arrivals late itself. They stay in the fit: on a machine the
    target shares, its own saturation also makes the generator late (the demo's steps past the
    shop's knee: 6-8 %, with the achieved rate already below the offered one), and leaving them
    out would hide the knee; the warning lets a reader check the generator before the target."""
    if "generator_late_share" not in steps:
        return []
    share = pd.to_numeric(steps["generator_late_share"], errors="coerce")
    late = share > GENERATOR_LATE_SHARE
    if not late.any():
        return []
    evidence = ", ".join(f"step {int(s)} ({v:.0%} of its arrivals)" for s, v in zip(steps["step"][late], share[late]))
    return [f"the load generator itself scheduled arrivals late at {evidence}: if it shares the target's machine or "
            "its CPU was busy, those steps may measure the generator; rerun with --workers to tell"]  # fmt: skip


def plan(steps: pd.DataFrame, settings: CapacitySettings) -> CapacityPlan:
    if len(steps) < 2:
        raise CapacityError(f"a capacity fit needs a step run with at least 2 steady steps (this run has {len(steps)})")
    n, source, warnings = concurrency(steps)
    warnings = generator_notes(steps) + warnings
    x = steps["rps"].to_numpy(float)
    if settings.model == "auto":
        model, fitted = select_model(n, x)
    else:
        model = MODELS[settings.model]().fit(n, x)
        fitted = {settings.model: model}
    slo = slo_capacity(steps, settings.slo_ms, settings.slo_statistic) if settings.slo_ms is not None else None
    per_instance = None
    if slo and slo.capacity_rps:
        per_instance = slo.capacity_rps / settings.replicas_in_run
    elif model.peak_throughput_ and math.isfinite(model.peak_throughput_):
        per_instance = model.peak_throughput_ / settings.replicas_in_run
        warnings.append("no SLO given: replicas are planned on the model's peak throughput, which has no latency margin")
    replicas = None
    if settings.target_rps is not None:
        if per_instance:
            replicas = replicas_needed(settings.target_rps, per_instance, settings.margin, settings.replicas_in_run)
        else:
            warnings.append("cannot plan replicas: no SLO capacity and the model has no finite peak")
    open_model = has_offered_rates(steps)
    offered = steps["offered_rps"] if open_model else [None] * len(steps)
    points = [{"step": int(s), "users": float(u), "concurrency": float(c), "rps": float(r), "p95_ms": float(p)}
              | ({} if o is None else {"offered_rps": float(o)})
              for s, u, c, r, p, o in zip(steps["step"], steps["users"], n, x, steps["p95_ms"], offered)]  # fmt: skip
    return CapacityPlan(
        concurrency_source=source,
        points=points,
        model=model.to_dict(),
        alternatives={k: v.to_dict() | {"aicc": v.aicc_} for k, v in fitted.items()},
        knee=knee(model, float(n.max()), settings.knee_fraction),
        slo=slo,
        replicas=replicas,
        warnings=warnings,
        offered_knee=offered_knee(steps) if open_model else None,
    )
