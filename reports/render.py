"""Build the page: a view of one run (or two) handed to one jinja2 template, autoescaped."""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2

import loadwise
from loadwise.analysis.redact import redact
from loadwise.analysis.rundir import REPORT_HTML, STATUS_COMPLETED, STATUS_FAILED
from loadwise.analysis.summary import RunSummary
from loadwise.analysis.thresholds import Threshold, ThresholdResult, evaluate
from loadwise.reports import (  # noqa: F401  (sections register themselves)
    cache_section,
    capacity_section,
    charts,
    checks_section,
    database_section,
    exceptions_section,
    hpa_section,
    open_model_section,
    scenarios_section,
)
from loadwise.reports.data import RunData
from loadwise.reports.sections import SECTIONS, SectionContent

TEMPLATES = Path(__file__).with_name("templates")
SORT_SCRIPT = (TEMPLATES / "sort.js").read_text(encoding="utf-8")
# Only our own inline script may run, even if an escaping bug let markup through.
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()}'"
)
CHANGE_TOLERANCE = 0.05  # deltas inside ±5 % are shown as no change

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
    trim_blocks=True, lstrip_blocks=True,
)  # fmt: skip


def ms(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.1f}"


def num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def pct(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}%"


_env.filters.update(ms=ms, num=num, pct=pct, redact=redact)


@dataclass
class Verdict:
    """The report's verdict: `state` pass, fail, warn or none (its colour), a label, the one or two
    numbers that decided it, and every threshold's result."""

    state: str
    label: str
    headline: str
    details: list[str] = field(default_factory=list)


def verdict(run: RunData, results: list[ThresholdResult]) -> Verdict:
    """pass / fail / none, with the one or two numbers that decided it."""
    info, overall = run.info, run.summary.get("overall", {})
    partial = info.status != STATUS_COMPLETED
    basics = f"p95 {ms(overall.get('p95_ms'))} ms, error rate {pct(overall.get('error_rate'))}, {num(overall.get('rps'))} req/s"
    if info.status == STATUS_FAILED:
        return Verdict("fail", "FAILED RUN", f"The run failed: {info.status_reason or 'no reason recorded'}",
                       [r.describe() for r in results])  # fmt: skip
    if info.aborted:  # an --abort-on threshold stopped it: what follows was not measured
        return Verdict("fail", "ABORTED", f"{info.status_reason}; {basics} until then", [r.describe() for r in results])
    if not results:
        label = "NO SLOs" if not partial else "INTERRUPTED"
        return Verdict("none" if not partial else "warn", label,
                       f"{basics}. No SLOs or thresholds configured: add them to the profile or pass --threshold.")
    failed = [r for r in results if not r.passed]
    if failed:
        return Verdict("fail", "FAIL", "; ".join(r.describe() for r in failed[:2]), [r.describe() for r in results])

    def margin(r: ThresholdResult) -> float:
        return abs((r.actual or 0) - r.threshold.limit) / (abs(r.threshold.limit) or 1)

    closest = sorted(results, key=margin)[:2]
    label = "PASS" if not partial else "PASS (INTERRUPTED RUN)"
    return Verdict("pass" if not partial else "warn", label, "; ".join(r.describe() for r in closest),
                   [r.describe() for r in results])


def _endpoint_rows(run: RunData) -> list[dict[str, Any]]:
    return sorted(run.summary.get("endpoints", []), key=lambda e: -e.get("requests", 0))


def _delta(a: Any, b: Any, higher_is_better: bool) -> dict[str, Any]:
    if a in (None, 0) or b is None or (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        return {"text": "–", "dir": "same"}
    change = (b - a) / a
    if abs(change) <= CHANGE_TOLERANCE:
        direction = "same"
    else:
        direction = "better" if (change > 0) == higher_is_better else "worse"
    return {"text": f"{change:+.1%}", "dir": direction}


@dataclass
class Comparison:
    """The report's side by side: per endpoint (overall first) each figure of the baseline and of
    this run with their change, and the two runs' throughput and p95 overlaid."""

    base: RunData
    rows: list[dict[str, Any]]
    chart: str | None


def comparison(base: RunData, run: RunData) -> Comparison:
    """Per-endpoint deltas (run against base) and the overlaid chart."""
    base_eps = {(e["method"], e["name"]): e for e in base.summary.get("endpoints", [])}
    rows = []
    pairs = [("overall", base.summary.get("overall", {}), run.summary.get("overall", {}))]
    pairs += [(f"{e['method']} {e['name']}", base_eps.get((e["method"], e["name"]), {}), e) for e in _endpoint_rows(run)]
    for label, a, b in pairs:
        rows.append({
            "endpoint": label,
            "rps": (a.get("rps"), b.get("rps"), _delta(a.get("rps"), b.get("rps"), True)),
            "p50": (a.get("p50_ms"), b.get("p50_ms"), _delta(a.get("p50_ms"), b.get("p50_ms"), False)),
            "p95": (a.get("p95_ms"), b.get("p95_ms"), _delta(a.get("p95_ms"), b.get("p95_ms"), False)),
            "p99": (a.get("p99_ms"), b.get("p99_ms"), _delta(a.get("p99_ms"), b.get("p99_ms"), False)),
            "errors": (a.get("error_rate"), b.get("error_rate"), _delta(a.get("error_rate"), b.get("error_rate"), False)),
        })  # fmt: skip
    chart = None
    if len(base.timeline) and len(run.timeline):
        chart = charts.compare_chart(base.timeline, run.timeline, f"baseline {base.info.id}", run.info.id)
    return Comparison(base, rows, chart)


def _metadata(run: RunData) -> list[tuple[str, str]]:
    info = run.info
    shape = f"{info.shape} {info.shape_params}" if info.shape else f"none (Locust options) {info.shape_params}"
    rows = [
        ("run", info.id), ("status", info.status + (f" ({info.status_reason})" if info.status_reason else "")),
        ("scenario", info.scenario), ("shape", shape), ("host", info.host),
        ("started", info.started_at or "–"), ("ended", info.ended_at or "–"),
        ("duration", f"{run.summary.get('duration_s', 0):.0f} s"),
        ("workers", f"{info.workers} (0: one local process)" if not info.workers else str(info.workers)),
        ("interval", f"{info.interval_s:g} s"), ("Locust", info.locust_version), ("loadwise", info.loadwise_version),
        ("target commit", info.target_commit or "–"),
        ("tags", ", ".join(f"{k}={v}" for k, v in info.tags.items()) or "–"),
        ("collector", ", ".join(info.collector.get("sources", [])) or "none"),
    ]  # fmt: skip
    return [(k, redact(str(v))) for k, v in rows + _locust_rows(info.locust)]


def _locust_rows(record: dict[str, Any]) -> list[tuple[str, str]]:
    """What shaped the run on Locust's side (run.json's `locust`): options, their sources, User classes."""
    if not record:
        return []
    tags = ", ".join(f"{label} {', '.join(record[key])}" for key, label in (("tags", "only"), ("exclude_tags", "except"))
                     if record.get(key))  # fmt: skip
    env = record.get("environment") or {}
    return [
        ("Locust options", " ".join(record.get("argv", [])) or "–"),
        ("tag filter", tags or "none"),
        ("Locust config files", ", ".join(record.get("config_files", [])) or "none"),
        ("LOCUST_* variables", ", ".join(f"{k}={v}" for k, v in env.items()) or "none"),
        ("User classes", "; ".join(_user_class(c) for c in record.get("user_classes", [])) or "–"),
    ]


def _user_class(entry: dict[str, Any]) -> str:
    parts = [f"fixed_count {entry['fixed_count']}" if entry.get("fixed_count") else f"weight {entry.get('weight', 1)}"] \
        if "weight" in entry or "fixed_count" in entry else []  # fmt: skip
    if "peak_users" in entry:
        parts.append(f"peak {entry['peak_users']} users")
    if "requests" in entry:
        parts.append(f"{entry['requests']:,} requests ({entry.get('failures', 0):,} failed)")
    return f"{entry.get('name', '?')} ({', '.join(parts)})" if parts else str(entry.get("name", "?"))


def build_view(run: RunData, baseline: RunData | None = None, thresholds: list[Threshold] | None = None) -> dict[str, Any]:
    results = evaluate(thresholds or [], RunSummary.from_dict(run.summary))
    timeline = run.timeline
    has_load = len(timeline) > 0 and run.summary.get("overall", {}).get("requests", 0) > 0
    curves = {"all endpoints": run.overall_counts}
    curves.update({f"{m} {n}": c for (m, n), c in sorted(run.endpoint_counts.items(), key=lambda kv: -int(kv[1].sum()))})
    sections: list[tuple[Any, SectionContent]] = []
    for section in SECTIONS:
        try:
            sections.append((section, section.build(run, baseline)))
        except Exception as exc:  # one broken analysis must not take the report down
            sections.append((section, SectionContent(notes=[f"this section could not be built: {redact(str(exc))}"])))
    missing = collector_problems(run.info.collector)
    return {
        "run": run,
        "title": f"loadwise report {run.info.id}",
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": loadwise.__version__,
        "verdict": verdict(run, results),
        "results": results,
        "overall": run.summary.get("overall", {}),
        "peak_users": None if timeline.empty else timeline["users"].max(),
        "load_chart": charts.load_chart(timeline) if has_load else None,
        "latency_chart": charts.latency_chart(timeline) if has_load else None,
        "distribution_chart": charts.distribution_chart(curves) if has_load else None,
        "server_chart": charts.server_chart(timeline) if len(timeline) else None,
        "collector_missing": missing,
        "steps": run.steps,
        "step_chart": charts.step_chart(run.steps) if len(run.steps) >= 2 else None,
        "endpoints": _endpoint_rows(run),
        "errors": run.errors.to_dict("records") if len(run.errors) else [],
        "sections": [(section, content) for section, content in sections if not content.empty],
        # Analyses not run yet: one line each saying how to fill them, not a page of empty sections.
        "waiting": [(section, content) for section, content in sections if content.empty],
        "metadata": _metadata(run),
        "compare": comparison(baseline, run) if baseline is not None else None,
        "script": SORT_SCRIPT,
        "csp": CSP,
    }


def collector_problems(collector: Any) -> list[dict[str, str]]:
    """run.json's `collector.missing` as rows of source, target, series and reason strings.

    The collector writes several shapes (Prometheus problems carry no `target`, scrape
    problems do; see loadwise.run.collector), and older or hand-edited run.json files may
    hold others. The template is strict about undefined keys, so every row gets every key
    here, and an entry that is not a dict is shown as its reason rather than dropped.
    """
    missing = collector.get("missing") if isinstance(collector, dict) else None
    if isinstance(missing, (str, dict)):
        missing = [missing]
    if not isinstance(missing, list):
        return []
    defaults = {"source": "collector", "target": "", "series": "–", "reason": "no reason recorded"}
    rows = []
    for problem in missing:
        if not isinstance(problem, dict):
            problem = {"reason": problem}
        rows.append({key: default if problem.get(key) is None else str(problem[key]) for key, default in defaults.items()})
    return rows


def render(run: RunData, baseline: RunData | None = None, thresholds: list[Threshold] | None = None) -> str:
    return _env.get_template("report.html.j2").render(**build_view(run, baseline, thresholds))


def write(run: RunData, out: Path | None = None, baseline: RunData | None = None,
          thresholds: list[Threshold] | None = None) -> Path:  # fmt: skip
    """Render and write; by default to the run's own `report.html`."""
    target = out or run.run_dir.path / REPORT_HTML
    if target.is_dir():
        target = target / REPORT_HTML
    html = render(run, baseline, thresholds)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)
    return target
