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

from loadwise.analysis.rundir import STATUS_COMPLETED
from loadwise.analysis.stored import Stored
from loadwise.analysis.summary import RunSummary

CONFIRMED, NOT_CONFIRMED, NOT_COMPARABLE = "confirmed", "not confirmed", "not comparable"
# HypoPG's hypothetical index against the real one, in planner cost: the same plan should cost
# within this factor either way (the hypothetical index's size, and so its page count, is an
# estimate). Measured on the demo shop's indexes: x0.99 to x1.02 (docs/verify.md).
COST_FACTOR = 1.5
# Redis evicts by sampling (maxmemory-samples 5), not by exact LRU: at the size it kept, its hit
# ratio was 0.015 to 0.080 below the exact-LRU curve's over 9 Zipf streams, most for the smallest
# caches (docs/verify.md, make bench).
HIT_RATIO_TOLERANCE = 0.10
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
    # False for a robustness check (the HPA settings at 0.5x and 2x the load they were chosen
    # for): reported with its verdict, but the exit code is the applied predictions' alone.
    gates: bool = True

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
        return not any(c.verdict == NOT_CONFIRMED and c.gates for c in self.checks)

    @property
    def judged(self) -> int:
        """Predictions that were set against a measurement (confirmed or not): zero means nothing was verified."""
        return sum(c.verdict != NOT_COMPARABLE and c.gates for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after, "passed": self.passed, "notes": self.notes,
                "checks": [asdict(c) | {"error": c.error} for c in self.checks]}  # fmt: skip

    def report_block(self) -> dict[str, Any]:
        """The report's `verification` slot (see reports.sections)."""
        gating = [c for c in self.checks if c.gates]
        confirmed = sum(c.verdict == CONFIRMED for c in gating)
        failed = sum(c.verdict == NOT_CONFIRMED for c in gating)
        robust = [c for c in self.checks if not c.gates]
        headline = (f"Advice of {self.before} checked against {self.after or 'the services now'}: {confirmed} confirmed, "
                    f"{failed} not confirmed, {len(gating) - confirmed - failed} not comparable"
                    + (f"; robustness: {sum(c.verdict == CONFIRMED for c in robust)} of {len(robust)} held" if robust else ""))  # fmt: skip
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
    """Why two runs' measurements cannot be set side by side (None: they can): the same scenario,
    shape and shape parameters, and both runs completed (a partial run measures a different load)."""
    for key in ("scenario", "shape"):
        if before.get(key) != after.get(key):
            return f"the runs differ in {key} ({before.get(key)} against {after.get(key)})"
    # The arrivals' seed is drawn per run: two samples of one load, not two loads.
    params = [before.get("shape_params") or {}, after.get("shape_params") or {}]
    differ = sorted(k for k in set(params[0]) | set(params[1]) if k != "seed" and params[0].get(k) != params[1].get(k))
    if differ:
        return "the runs differ in " + ", ".join(f"{k} ({params[0].get(k)} against {params[1].get(k)})" for k in differ)
    for which, info in (("BEFORE", before), ("AFTER", after)):
        if info.get("status") != STATUS_COMPLETED:
            reason = f": {info['status_reason']}" if info.get("status_reason") else ""
            return f"{which} did not complete ({info.get('status')}{reason})"
    return None


# -- database indexes ------------------------------------------------------------------------


@dataclass(frozen=True)
class AdvisedStatement:
    """A statement an advised index was to help, with what the advisor measured and predicted."""

    query: str
    cost_before: float  # planner cost without the index
    cost_after: float  # with HypoPG's hypothetical index
    mean_ms: float | None  # its mean time where it was measured (not for a statements file)
    source: str


@dataclass(frozen=True)
class AdvisedIndex:
    table: str
    columns: tuple[str, ...]
    statements: tuple[AdvisedStatement, ...]

    @property
    def label(self) -> str:
        return f"index on {self.table} ({', '.join(self.columns)})"


def advised_indexes(block: Stored) -> list[AdvisedIndex]:
    """summary.json's `database` read back."""
    from loadwise.analysis.indexes.sources import SOURCE_FILE

    out = []
    for index in block.children("indexes"):
        statements = []
        for s in index.children("statements"):
            source = s.text("source", "pg_stat_statements")
            # A statements file gives no times: the advisor's 1.0 ms there only ranks them.
            mean = None if source == SOURCE_FILE else s.number("mean_ms", None, low=0)
            statements.append(AdvisedStatement(s.text("query"), s.number("cost_before", low=0), s.number("cost_after", low=0),
                                               mean, source))  # fmt: skip
        out.append(AdvisedIndex(index.text("table"), tuple(index.texts("columns")), tuple(statements)))
    return out


def statement_key(query: str) -> str:
    """One key for a statement whatever its constants: a log's `WHERE id = 42` and
    pg_stat_statements' `WHERE id = $1` are the same statement (pglast's fingerprint)."""
    from pglast.parser import ParseError, fingerprint

    try:
        return fingerprint(query)
    except ParseError:
        return " ".join(query.split())


def index_checks(advice: list[AdvisedIndex], existing: list[tuple[str, tuple[str, ...]]], costs_now: dict[str, float],
                 after_window: list[dict[str, Any]] | None) -> list[Check]:  # fmt: skip
    """Per advised index: was it created (an index on the table leading with its columns); per
    statement it was to help, the planner cost HypoPG predicted against the cost with the real
    index (`costs_now`, query -> cost), and the statement's mean time before (from the advice)
    against after (the AFTER run's pg_stat_statements window, matched by fingerprint)."""
    checks = []
    after_by_key = {statement_key(s["query"]): s for s in after_window or [] if isinstance(s.get("query"), str)}
    for index in advice:
        made = any(t == index.table and cols[: len(index.columns)] == index.columns for t, cols in existing)
        if not made:
            checks.append(Check(index.label, "created", None, None, None, NOT_COMPARABLE,
                                "not applied: no valid index on the table starts with these columns"))  # fmt: skip
            continue
        for statement in index.statements:
            short = " ".join(statement.query.split())[:60]
            predicted, now = statement.cost_after, costs_now.get(statement.query)
            if now is None:
                checks.append(Check(index.label, f"planner cost: {short}", statement.cost_before, predicted, None,
                                    NOT_COMPARABLE, "the statement could not be planned now"))  # fmt: skip
            else:
                ratio = now / predicted if predicted else float("inf")
                ok = 1 / COST_FACTOR <= ratio <= COST_FACTOR
                checks.append(Check(index.label, f"planner cost: {short}", statement.cost_before, predicted, now,
                                    CONFIRMED if ok else NOT_CONFIRMED,
                                    f"HypoPG's cost against the real index's: x{ratio:.2f} (confirmed within x{COST_FACTOR:g})"))  # fmt: skip
            checks.append(_time_check(index.label, short, statement, after_by_key, after_window is None))
    return checks


def _time_check(label: str, short: str, statement: AdvisedStatement, after_by_key: dict[str, dict[str, Any]],
                unrecorded: bool) -> Check:  # fmt: skip
    """Only the direction is predicted: time does not scale with planner cost (caching, the rows returned)."""
    before_ms, after = statement.mean_ms, after_by_key.get(statement_key(statement.query))
    quantity = f"mean time: {short}"
    if before_ms is None:
        return Check(label, quantity, None, None, None, NOT_COMPARABLE,
                     f"no time before: the statement came from a {statement.source}", "ms")  # fmt: skip
    if unrecorded:
        return Check(label, quantity, before_ms, None, None, NOT_COMPARABLE,
                     "the AFTER run recorded no statements (run it with the database's DSN)", "ms")  # fmt: skip
    if after is None:
        return Check(label, quantity, before_ms, None, None, NOT_COMPARABLE, "the statement did not run in the AFTER run", "ms")
    measured = float(after["mean_ms"])
    dropped = measured < before_ms
    cut = 1 - statement.cost_after / statement.cost_before if statement.cost_before else None
    # A log's times are only the executions over log_min_duration_statement: its mean is the slow ones'.
    biased = f" (before: from the {statement.source}, its logged executions only)" if statement.source != "pg_stat_statements" else ""
    reason = (f"{after.get('calls')} calls after; predicted to fall (planner cost cut "
              f"{'–' if cut is None else f'{cut:.0%}'}): {'it fell' if dropped else 'it did not fall'}{biased}")
    return Check(label, quantity, before_ms, None, measured, CONFIRMED if dropped else NOT_CONFIRMED, reason, "ms")


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


@dataclass(frozen=True)
class AdvisedCache:
    """summary.json's `cache` read back: the recommended entries, the curve it was read from."""

    entries: int  # in the full stream's entries
    expected_hit_ratio: float | None
    sample_rate: float  # the key sample's share of keys; the replayed stream is that sample
    curve: tuple[tuple[float, float], ...]  # (size in entries, hit ratio), sizes ascending
    method: str  # how the curve was built (exact stack distances or SHARDS sampling)

    @classmethod
    def read(cls, block: Stored) -> AdvisedCache:
        recommended = block.child("recommended")
        points = [(p.number("size", low=0), p.number("hit_ratio", low=0)) for p in block.children("mrc")]
        return cls(recommended.whole("entries", low=1), recommended.number("expected_hit_ratio", None, low=0),
                   block.number("sample_rate", 1.0, above=0), tuple(sorted(points)), block.text("method", "the advisor's curve"))  # fmt: skip

    def curve_at(self, size: float) -> float | None:
        """The stored curve's hit ratio at `size` entries (linear between its points)."""
        import numpy as np

        if not self.curve:
            return None
        sizes, ratios = zip(*self.curve)
        return float(np.interp(size, np.array(sizes), np.array(ratios)))

    @property
    def replayed_entries(self) -> int:
        """The recommended size in the sampled stream's own entries."""
        return max(1, round(self.entries * self.sample_rate))


def cache_checks(advice: AdvisedCache, replayed_hit_ratio: float | None, held: float | None, how: str) -> list[Check]:
    """Two gaps, apart: the size Redis kept under the maxmemory meant for the recommended entries,
    and the hit ratio it gave against the advisor's curve at the size it kept (the sampled
    eviction's own gap). `held` is in the replayed stream's entries (a sampled stream: scaled)."""
    label = f"cache of {advice.entries} entries"
    if replayed_hit_ratio is None or held is None:
        return [Check(label, "hit ratio", None, advice.expected_hit_ratio, replayed_hit_ratio, NOT_COMPARABLE, how, "ratio")]
    kept = held / advice.sample_rate
    sizing = Check(label, "entries kept under the sized maxmemory", None, float(advice.entries), kept, NOT_COMPARABLE,
                   f"{how}; Redis counts memory, not entries: the size it kept is what the hit ratio is judged at", "entries")
    predicted = advice.curve_at(kept)
    gap = replayed_hit_ratio - predicted if predicted is not None else None
    ok = gap is not None and abs(gap) <= HIT_RATIO_TOLERANCE
    ratio = Check(label, "hit ratio at the size kept", None, predicted, replayed_hit_ratio, CONFIRMED if ok else NOT_CONFIRMED,
                  f"Redis's hits over the replay's lookups against the curve ({advice.method}) at {kept:.0f} entries: "
                  f"{'–' if gap is None else f'{gap:+.3f}'} (confirmed within ±{HIT_RATIO_TOLERANCE:g}; the advice "
                  f"predicted {advice.expected_hit_ratio} at {advice.entries})", "ratio")  # fmt: skip
    return [sizing, ratio]


# -- capacity -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdvisedCapacity:
    """summary.json's `capacity` read back: the SLO-bound throughput and what bounded it."""

    capacity_rps: float | None  # None: no SLO given, or even the first step missed it
    slo: str  # as "p95<=300ms"
    statistic: str | None  # the SLO as `loadwise capacity --slo` was given: p95 and 300
    slo_ms: float | None
    replicas_in_run: int

    @classmethod
    def read(cls, block: Stored) -> AdvisedCapacity:
        from loadwise.autoscaling.advise import replicas_in_run

        slo, settings = block.optional_child("slo"), block.optional_child("settings")
        return cls(None if slo is None else slo.number("capacity_rps", None, above=0),
                   "" if slo is None else slo.text("slo", ""),
                   None if settings is None else settings.text("slo_statistic", None),
                   None if settings is None else settings.number("slo_ms", None, above=0),
                   replicas_in_run(block))  # fmt: skip

    @property
    def per_instance(self) -> float | None:
        return None if self.capacity_rps is None else self.capacity_rps / self.replicas_in_run


@dataclass(frozen=True)
class MeasuredCapacity:
    """What the AFTER run's steps say, or why they say nothing (capacity_rps None, `missed` False)."""

    capacity_rps: float | None
    how: str
    lower_bound: bool = False  # the AFTER run never broke the SLO
    missed: bool = False  # even its first step missed the SLO: a measurement of zero, not an absence


def capacity_check(advice: AdvisedCapacity, measured: MeasuredCapacity, replicas_after: int) -> Check:
    """Linear scaling: the BEFORE run's per-instance SLO capacity times the replicas that served
    the AFTER run, against the SLO capacity the AFTER run measured."""
    per_instance = advice.per_instance
    label = f"{replicas_after} replicas serve {replicas_after} x {per_instance or 0:.1f} req/s within {advice.slo}"
    quantity = "SLO-bound throughput"
    if per_instance is None:
        return Check(label, quantity, None, None, measured.capacity_rps, NOT_COMPARABLE, measured.how, "req/s")
    predicted = per_instance * replicas_after
    if measured.missed:
        return Check(label, quantity, advice.capacity_rps, predicted, None, NOT_CONFIRMED,
                     f"{measured.how}: it served nothing within the SLO", "req/s")  # fmt: skip
    if measured.capacity_rps is None:
        return Check(label, quantity, advice.capacity_rps, predicted, None, NOT_COMPARABLE, measured.how, "req/s")
    error = measured.capacity_rps / predicted - 1
    ok = abs(error) <= CAPACITY_TOLERANCE
    lower = " (the AFTER run never broke the SLO: its capacity is a lower bound)" if measured.lower_bound else ""
    return Check(label, quantity, advice.capacity_rps, predicted, measured.capacity_rps, CONFIRMED if ok else NOT_CONFIRMED,
                 f"{measured.how}; linear scaling assumed (confirmed within ±{CAPACITY_TOLERANCE:.0%}){lower}", "req/s")  # fmt: skip


# -- HPA --------------------------------------------------------------------------------------


def hpa_checks(replays: list[tuple[float, dict[str, Any], dict[str, Any]]], budget_s: float) -> list[Check]:
    """The recommended and current settings replayed on the run's trace scaled by each factor:
    (factor, recommended's evidence, current's evidence). The recommendation claims its SLO-violation
    time stays within the budget on the load it was chosen for (1x); 0.5x and 2x are robustness
    checks, reported but not part of the exit code (no advisor claims them)."""
    checks = []
    for factor, recommended, current in replays:
        label = f"HPA target {recommended['target']:.0%}, min {recommended['min_replicas']}, max {recommended['max_replicas']}"
        broken = float(recommended["slo_violation_seconds"])
        gates = factor == 1.0
        checks.append(Check(label, f"SLO broken, load x{factor:g}", float(current["slo_violation_seconds"]), budget_s, broken,
                            CONFIRMED if broken <= budget_s else NOT_CONFIRMED,
                            f"replayed through the controller simulator: {recommended['replica_hours']:.1f} replica-hours, "
                            f"the current settings {current['replica_hours']:.1f} (before: the current settings' SLO time; "
                            f"predicted: at most the budget)" + ("" if gates else "; a robustness check, not in the exit code"),
                            "s", bound=True, gates=gates))  # fmt: skip
    return checks
