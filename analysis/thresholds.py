"""Threshold expressions, k6-style: `p95<300ms`, `error_rate<1%`, `GET /products/[id]: p95<50ms`.

A threshold names a statistic of `summary.json` (overall, or one endpoint when prefixed
with `[METHOD] NAME:`), a comparison and a limit with an optional unit. In a run of several
scenarios, `scenario=NAME:` first judges that scenario's own statistics
(`scenario=checkout: p95<300ms`, `scenario=checkout: GET /pay: error_rate<1%`). A malformed
expression raises ThresholdError naming the position of the mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadwise.errors import LoadwiseError

if TYPE_CHECKING:  # summary imports numpy and pandas; every --help reads threshold syntax
    from loadwise.analysis.summary import RunSummary, Stats

METRICS = {
    "p50": ("p50_ms", "ms"), "p90": ("p90_ms", "ms"), "p95": ("p95_ms", "ms"), "p99": ("p99_ms", "ms"),
    "mean": ("mean_ms", "ms"), "max": ("max_ms", "ms"), "error_rate": ("error_rate", "ratio"),
    "rps": ("rps", "count"), "requests": ("requests", "count"), "failures": ("failures", "count"),
    # Open model (rate shapes): p50 ... p99 are measured from each request's intended start (what a
    # client sees); these are the service times alone (send to response).
    "service_p50": ("service_p50_ms", "ms"), "service_p90": ("service_p90_ms", "ms"),
    "service_p95": ("service_p95_ms", "ms"), "service_p99": ("service_p99_ms", "ms"),
    "dropped_iterations": ("dropped_iterations", "count"),
    # loadwise.check(): the share of named checks that passed (`checks>99%`)
    "checks": ("checks", "ratio"),
}  # fmt: skip
UNITS = {"ms": ("ms", 1.0), "s": ("ms", 1000.0), "%": ("ratio", 0.01)}
OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}

_CONDITION = re.compile(r"\s*(?P<metric>[a-z_0-9]+)\s*(?P<op><=|>=|<|>)\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|%)?\s*$")
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


class ThresholdError(LoadwiseError, ValueError):
    """A malformed threshold; the one-line message quotes it and gives the position of the mistake."""


@dataclass(frozen=True)
class Threshold:
    text: str
    metric: str  # a summary key, e.g. p95_ms
    statistic: str  # as written, e.g. p95
    op: str
    limit: float  # in the summary key's unit (ms, ratio or count)
    endpoint: str | None = None  # endpoint name, or None for overall
    method: str | None = None
    scenario: str | None = None  # a run of several scenarios: that one's statistics (None: the run's)

    @property
    def where(self) -> str:
        """`scenario=NAME: METHOD NAME: ` as written before the condition ('' for the run overall)."""
        scenario = f"scenario={self.scenario}: " if self.scenario else ""
        return scenario + (f"{self.method + ' ' if self.method else ''}{self.endpoint}: " if self.endpoint else "")


@dataclass(frozen=True)
class ThresholdResult:
    threshold: Threshold
    actual: float | None
    passed: bool

    def describe(self) -> str:
        t = self.threshold
        where = t.where
        if self.actual is None:
            return f"{where}{t.statistic} not measured (limit {t.op} {_fmt(t.metric, t.limit)})"
        verdict = "ok" if self.passed else "FAILED"
        return f"{where}{t.statistic} {_fmt(t.metric, self.actual)} (limit {t.op} {_fmt(t.metric, t.limit)}) {verdict}"


def _fmt(metric: str, value: float) -> str:
    if metric in ("error_rate", "checks"):
        return f"{100 * value:.2f}%"
    if metric.endswith("_ms"):
        return f"{value:.1f} ms"
    return f"{value:g}"


def _fail(text: str, position: int, message: str) -> ThresholdError:
    return ThresholdError(f"threshold {text!r}: {message} at position {position + 1}")


_SCENARIO = re.compile(r"\s*scenario\s*=\s*(?P<name>[^:\s]*)\s*:")


def parse(text: str) -> Threshold:
    endpoint = method = scenario = None
    condition, offset = text, 0
    prefix = _SCENARIO.match(text)
    if prefix is not None:
        if not prefix["name"]:
            raise _fail(text, prefix.start("name"), "expected a scenario name after 'scenario='")
        scenario, offset = prefix["name"], prefix.end()
        condition = text[offset:]
    if ":" in condition:
        head, _, condition = condition.rpartition(":")
        offset += len(head) + 1
        head = head.strip()
        if not head:
            raise _fail(text, offset - len(head) - 1 if scenario else 0, "expected an endpoint before ':'")
        first, _, rest = head.partition(" ")
        if first.upper() in _METHODS and rest.strip():
            method, endpoint = first.upper(), rest.strip()
        else:
            endpoint = head
    match = _CONDITION.match(condition)
    if not match:
        return _explain(text, condition, offset)
    name, unit = match["metric"], match["unit"]
    if name not in METRICS:
        raise _fail(text, offset + condition.index(name), f"unknown statistic {name!r} (one of {', '.join(METRICS)})")
    key, kind = METRICS[name]
    limit = float(match["number"])
    if unit is not None:
        unit_kind, factor = UNITS[unit]
        if unit_kind != kind:
            raise _fail(text, offset + match.start("unit"), f"unit {unit!r} does not fit {name}")
        limit *= factor
    elif kind == "ratio":
        raise _fail(text, offset + match.end("number"), f"{name} needs a unit: %")
    return Threshold(text.strip(), key, name, match["op"], limit, endpoint, method, scenario)


# Statistics the live abort rules judge on the intervals as they close (the open model's service
# times and dropped iterations are only known at the end).
LIVE_METRICS = ("p50", "p90", "p95", "p99", "mean", "max", "error_rate", "rps", "requests", "failures")
_ABORT_CLAUSE = re.compile(r"\s+(?P<word>over|after)\s+(?P<value>\S+)\s*$")


@dataclass(frozen=True)
class AbortRule:
    """A threshold that stops the run when it fails, judged live: over a sliding window of the
    last `window_s` seconds (None: everything since the run started), from `delay_s` on."""

    threshold: Threshold
    window_s: float | None
    delay_s: float
    text: str


def parse_abort(text: str) -> AbortRule:
    """`[ENDPOINT:] CONDITION [over DURATION] [after DURATION]`, e.g. `p95<500ms over 30s after 1m`."""
    from loadwise.durations import parse_duration

    rest, found = text.rstrip(), {}
    while (match := _ABORT_CLAUSE.search(rest)) is not None:
        word = match["word"]
        if word in found:
            raise _fail(text, match.start("word"), f"'{word}' given twice")
        try:
            found[word] = parse_duration(match["value"])
        except ValueError as exc:
            raise _fail(text, match.start("value"), str(exc)) from None
        rest = rest[: match.start()]
    threshold = parse(rest)
    if threshold.statistic not in LIVE_METRICS:
        raise _fail(text, rest.index(threshold.statistic), f"{threshold.statistic} is only known at the end of a run "
                    f"(abort on one of {', '.join(LIVE_METRICS)})")  # fmt: skip
    window = found.get("over")
    if window is not None and window <= 0:
        raise _fail(text, len(rest), "the window ('over') must be longer than zero")
    return AbortRule(threshold, window, found.get("after", 0.0), text.strip())


def _explain(text: str, condition: str, offset: int) -> Threshold:
    """Find where a condition stops making sense, for the error message."""
    m = re.match(r"\s*[a-z_0-9]+", condition)
    if not m:
        raise _fail(text, offset + len(condition) - len(condition.lstrip()), "expected a statistic such as p95")
    pos = m.end()
    op = re.match(r"\s*(<=|>=|<|>)", condition[pos:])
    if not op:
        raise _fail(text, offset + pos, "expected one of < <= > >=")
    pos += op.end()
    number = re.match(r"\s*\d+(?:\.\d+)?", condition[pos:])
    if not number:
        raise _fail(text, offset + pos + len(condition[pos:]) - len(condition[pos:].lstrip()), "expected a number")
    pos += number.end()
    raise _fail(text, offset + pos + len(condition[pos:]) - len(condition[pos:].lstrip()), "expected a unit (ms, s, %) or the end")


def evaluate(thresholds: list[Threshold], summary: RunSummary) -> list[ThresholdResult]:
    results = []
    for t in thresholds:
        source: Any = summary if t.scenario is None else summary.scenario(t.scenario)  # None: no such scenario ran
        stats: Stats | None = None if source is None else source.overall if t.endpoint is None else source.endpoint(t.endpoint, t.method)
        actual = None if stats is None else stats.metric(t.metric)
        passed = actual is not None and OPS[t.op](actual, t.limit)
        results.append(ThresholdResult(t, actual, passed))
    return results
