"""Advice proven by re-measurement: each recommendation's prediction beside what was measured
after it was applied, with a verdict.

The predictions are the ones stored with the advice in the BEFORE run's summary.json (the
index advisor's HypoPG costs and the statements' times, the cache advisor's hit ratio at its
size, the capacity plan's per-instance throughput, the HPA replay's SLO time); the
measurements come from the AFTER run (same scenario and shape) and from the services as
they are now (the planner with the real index, a Redis replaying the key stream). Pure: the
callers (the CLI) read the runs and the services and pass plain values in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from loadwise.analysis.summary import RunSummary

CONFIRMED, NOT_CONFIRMED, NOT_COMPARABLE = "confirmed", "not confirmed", "not comparable"
# HypoPG's hypothetical index against the real one, in planner cost: the same plan should cost
# within this factor either way (the hypothetical index's size, and so its page count, is an
# estimate). Measured on the demo shop's indexes: x0.99 to x1.02 (docs/verify.md).
COST_FACTOR = 1.5
# Redis evicts by sampling (maxmemory-samples 5), not by exact LRU: at the size it kept, its hit
# ratio was 0.045 to 0.003 below the exact-LRU curve's over 9 Zipf streams (docs/verify.md).
HIT_RATIO_TOLERANCE = 0.05
# A capacity prediction within this relative error of the measured one is confirmed.
CAPACITY_TOLERANCE = 0.15


@dataclass
class Check:
    """One prediction against its measurement."""

    advice: str  # the recommendation, as the advisor said it
    quantity: str  # what was predicted and measured
    before: float | None  # the value before the change, where there is one
    predicted: float | None
    measured: float | None
    verdict: str  # CONFIRMED, NOT_CONFIRMED or NOT_COMPARABLE
    reason: str  # how the verdict was reached, or why the two cannot be compared
    unit: str = ""
    bound: bool = False  # the prediction is a bound (at most), not a value: no relative error

    @property
    def error(self) -> float | None:
        """measured / predicted - 1."""
        if self.bound or self.predicted in (None, 0) or self.measured is None:
            return None
        return self.measured / self.predicted - 1


@dataclass
class Verification:
    """Every check of one BEFORE run's advice against an AFTER run (or the services now)."""

    before: str  # run ids
    after: str | None
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No applied recommendation failed its prediction (unapplied ones are not comparable)."""
        return not any(c.verdict == NOT_CONFIRMED for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after, "passed": self.passed, "notes": self.notes,
                "checks": [asdict(c) | {"error": c.error} for c in self.checks]}  # fmt: skip

    def report_block(self) -> dict[str, Any]:
        """The report's `verification` slot (see reports.sections)."""
        confirmed = sum(c.verdict == CONFIRMED for c in self.checks)
        failed = sum(c.verdict == NOT_CONFIRMED for c in self.checks)
        headline = (f"Advice of {self.before} checked against {self.after or 'the services now'}: {confirmed} confirmed, "
                    f"{failed} not confirmed, {len(self.checks) - confirmed - failed} not comparable")  # fmt: skip
        rows = [[c.advice, c.quantity, _shown(c.before, c.unit), _shown(c.predicted, c.unit), _shown(c.measured, c.unit),
                 "–" if c.error is None else f"{c.error:+.1%}", c.verdict, c.reason] for c in self.checks]  # fmt: skip
        return {"headline": headline, "notes": self.notes,
                "tables": [{"title": "Predicted against measured",
                            "columns": ["advice", "quantity", "before", "predicted", "measured", "error", "verdict", "how"],
                            "rows": rows}]}  # fmt: skip


def _shown(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "ratio":
        return f"{value:.1%}"
    return f"{value:,.4g}{' ' + unit if unit else ''}"


def comparable(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """Why two runs' measurements cannot be set side by side (None: they can): same scenario and shape."""
    for key in ("scenario", "shape"):
        if before.get(key) != after.get(key):
            return f"the runs differ in {key} ({before.get(key)} against {after.get(key)})"
    return None


# -- database indexes ------------------------------------------------------------------------


def index_checks(advice: dict[str, Any], existing: list[tuple[str, tuple[str, ...]]], costs_now: dict[str, float],
                 after_window: list[dict[str, Any]] | None) -> list[Check]:  # fmt: skip
    """Per advised index: was it created (an index on the table leading with its columns); per
    statement it was to help, the planner cost HypoPG predicted against the cost with the real
    index (`costs_now`, query -> cost), and the statement's mean time before (from the advice)
    against after (the AFTER run's pg_stat_statements window)."""
    checks = []
    after_by_query = {s.get("query"): s for s in after_window or []}
    for index in advice.get("indexes") or []:
        table, columns = index.get("table"), tuple(index.get("columns") or ())
        label = f"index on {table} ({', '.join(columns)})"
        made = any(t == table and cols[: len(columns)] == columns for t, cols in existing)
        if not made:
            checks.append(Check(label, "created", None, None, None, NOT_COMPARABLE,
                                "not applied: no index on the table starts with these columns"))  # fmt: skip
            continue
        for statement in index.get("statements") or []:
            query = statement.get("query", "")
            short = " ".join(query.split())[:60]
            predicted, now = statement.get("cost_after"), costs_now.get(query)
            if now is None:
                checks.append(Check(label, f"planner cost: {short}", statement.get("cost_before"), predicted, None,
                                    NOT_COMPARABLE, "the statement could not be planned now"))  # fmt: skip
            else:
                ratio = now / predicted if predicted else float("inf")
                ok = 1 / COST_FACTOR <= ratio <= COST_FACTOR
                checks.append(Check(label, f"planner cost: {short}", statement.get("cost_before"), predicted, now,
                                    CONFIRMED if ok else NOT_CONFIRMED,
                                    f"HypoPG's cost against the real index's: x{ratio:.2f} (confirmed within x{COST_FACTOR:g})"))  # fmt: skip
            before_ms, after = statement.get("mean_ms"), after_by_query.get(query)
            if after_window is None:
                reason, verdict, measured = "the AFTER run recorded no statements (run it with the database's DSN)", NOT_COMPARABLE, None
            elif after is None:
                reason, verdict, measured = "the statement did not run in the AFTER run", NOT_COMPARABLE, None
            else:
                measured = float(after["mean_ms"])
                dropped = before_ms is not None and measured < before_ms
                verdict = CONFIRMED if dropped else NOT_CONFIRMED
                cut = 1 - (predicted or 0) / statement["cost_before"] if statement.get("cost_before") else None
                reason = (f"{after['calls']} calls after; predicted to fall (planner cost cut "
                          f"{'–' if cut is None else f'{cut:.0%}'}): {'it fell' if dropped else 'it did not fall'}")
            # Only the direction is predicted: time does not scale with planner cost (caching, the rows returned).
            checks.append(Check(label, f"mean time: {short}", before_ms, None, measured, verdict, reason, "ms"))
    return checks


def endpoint_checks(before: RunSummary, after: RunSummary) -> list[Check]:
    """Each endpoint's p95 before and after, beside the checks (context, no prediction of its own)."""
    out = [Check("every change", "overall p95", before.overall.p95_ms, None, after.overall.p95_ms, NOT_COMPARABLE,
                 "measured before and after; no advisor predicts an endpoint's latency", "ms")]  # fmt: skip
    for endpoint in before.endpoints:
        now = after.endpoint(endpoint.name, endpoint.method)
        if now is not None:
            out.append(Check("every change", f"{endpoint.method} {endpoint.name} p95", endpoint.p95_ms, None, now.p95_ms,
                             NOT_COMPARABLE, "measured before and after", "ms"))  # fmt: skip
    return out


# -- cache ----------------------------------------------------------------------------------


def curve_at(points: list[dict[str, float]], size: float) -> float | None:
    """The stored miss-ratio curve's hit ratio at `size` entries (linear between its points)."""
    import numpy as np

    if not points:
        return None
    sizes = np.array([p["size"] for p in points], dtype=float)
    return float(np.interp(size, sizes, np.array([p["hit_ratio"] for p in points], dtype=float)))


def cache_checks(advice: dict[str, Any], replayed_hit_ratio: float | None, held: float | None, how: str) -> list[Check]:
    """Two gaps, apart: the size Redis kept under the maxmemory meant for the recommended entries,
    and the hit ratio it gave against the exact-LRU curve's at the size it kept (the sampled
    eviction's own gap). `held` is in the replayed stream's entries (a sampled stream: scaled)."""
    recommended = advice.get("recommended") or {}
    entries = recommended.get("entries")
    label = f"cache of {entries} entries"
    if replayed_hit_ratio is None or held is None:
        return [Check(label, "hit ratio", None, recommended.get("expected_hit_ratio"), replayed_hit_ratio, NOT_COMPARABLE,
                      how, "ratio")]  # fmt: skip
    scale = 1.0 / float(advice.get("sample_rate") or 1.0)
    kept = held * scale
    sizing = Check(label, "entries kept under the sized maxmemory", None, float(entries), kept, NOT_COMPARABLE,
                   f"{how}; Redis counts memory, not entries: the size it kept is what the hit ratio is judged at", "entries")
    predicted = curve_at(advice.get("mrc") or [], kept)
    gap = replayed_hit_ratio - predicted if predicted is not None else None
    ok = gap is not None and abs(gap) <= HIT_RATIO_TOLERANCE
    ratio = Check(label, "hit ratio at the size kept", None, predicted, replayed_hit_ratio, CONFIRMED if ok else NOT_CONFIRMED,
                  f"Redis's keyspace_hits / (hits + misses) against the exact-LRU curve at {kept:.0f} entries: "
                  f"{'–' if gap is None else f'{gap:+.3f}'} (confirmed within ±{HIT_RATIO_TOLERANCE:g}; the advice "
                  f"predicted {recommended.get('expected_hit_ratio')} at {entries})", "ratio")  # fmt: skip
    return [sizing, ratio]


# -- capacity -------------------------------------------------------------------------------


def capacity_check(before: dict[str, Any], measured_rps: float | None, replicas_after: int, how: str) -> Check:
    """Linear scaling: the BEFORE run's per-instance SLO capacity times the replicas that served
    the AFTER run, against the SLO capacity the AFTER run measured."""
    slo = before.get("slo") or {}
    replicas_before = int((before.get("settings") or {}).get("replicas_in_run") or 1)
    per_instance = slo.get("capacity_rps") / replicas_before if slo.get("capacity_rps") else None
    label = f"{replicas_after} replicas serve {replicas_after} x {per_instance or 0:.1f} req/s within {slo.get('slo')}"
    if per_instance is None or measured_rps is None:
        return Check(label, "SLO-bound throughput", per_instance, None, measured_rps, NOT_COMPARABLE, how, "req/s")
    predicted = per_instance * replicas_after
    error = measured_rps / predicted - 1
    ok = abs(error) <= CAPACITY_TOLERANCE
    lower = " (the AFTER run never broke the SLO: its capacity is a lower bound)" if how.endswith("lower bound") else ""
    return Check(label, "SLO-bound throughput", per_instance * replicas_before, predicted, measured_rps,
                 CONFIRMED if ok else NOT_CONFIRMED,
                 f"{how}; linear scaling assumed (confirmed within ±{CAPACITY_TOLERANCE:.0%}){lower}", "req/s")  # fmt: skip


# -- HPA --------------------------------------------------------------------------------------


def hpa_checks(replays: list[tuple[float, dict[str, Any], dict[str, Any]]], budget_s: float) -> list[Check]:
    """The recommended and current settings replayed on the run's trace scaled by each factor:
    (factor, recommended's evidence, current's evidence). The recommendation claims its SLO-violation
    time stays within the budget; at 1x that is how it was chosen, at 0.5x and 2x it is tested."""
    checks = []
    for factor, recommended, current in replays:
        label = f"HPA target {recommended['target']:.0%}, min {recommended['min_replicas']}, max {recommended['max_replicas']}"
        broken = float(recommended["slo_violation_seconds"])
        checks.append(Check(label, f"SLO broken, load x{factor:g}", float(current["slo_violation_seconds"]), budget_s, broken,
                            CONFIRMED if broken <= budget_s else NOT_CONFIRMED,
                            f"replayed through the controller simulator: {recommended['replica_hours']:.1f} replica-hours, "
                            f"the current settings {current['replica_hours']:.1f} (before: the current settings' SLO time; "
                            f"predicted: at most the budget)", "s", bound=True))  # fmt: skip
    return checks
