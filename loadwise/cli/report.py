"""`loadwise report` and `loadwise compare`: one self-contained HTML file per run or pair."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from loadwise.cli.common import add_verdict_options, thresholds
from loadwise.errors import EXIT_OK

JSON_HELP = "print {\"report\": PATH, \"verdict\": ...} as JSON"


def register(sub: Any) -> None:
    report = sub.add_parser(
        "report", help="render a run's self-contained HTML report",
        description="Render report.html for a run directory (one file, no network requests). "
        "The verdict uses the profile's slos/thresholds and any --threshold.",
    )  # fmt: skip
    report.add_argument("run", metavar="RUN", help="run directory")
    report.add_argument("--baseline", metavar="RUN", help="overlay this earlier run and show per-endpoint deltas")
    report.add_argument("-o", "--output", type=Path, help="write here (default RUN/report.html)")
    add_verdict_options(report, JSON_HELP)
    report.set_defaults(handler=cmd_report)

    compare = sub.add_parser("compare", help="side-by-side report of two runs (before/after, blue/green)",
                             description="Render a comparison of RUN_B against RUN_A (the baseline).")
    compare.add_argument("run_a", metavar="RUN_A", help="baseline run directory")
    compare.add_argument("run_b", metavar="RUN_B", help="run directory compared with it")
    compare.add_argument("-o", "--output", type=Path, help="write here (default RUN_B/compare-<RUN_A id>.html)")
    add_verdict_options(compare, JSON_HELP)
    compare.set_defaults(handler=cmd_compare)


def _print_report(path: Path, view_verdict: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"report": str(path), "verdict": view_verdict.label, "headline": view_verdict.headline}))
    else:
        print(f"{view_verdict.label}: {view_verdict.headline}", file=sys.stderr)
        print(path)


def cmd_report(args: argparse.Namespace) -> int:
    from loadwise.analysis.summary import RunSummary
    from loadwise.analysis.thresholds import evaluate
    from loadwise.reports import data, render

    checks = thresholds(args)
    run = data.load(args.run)
    baseline = data.load(args.baseline) if args.baseline else None
    path = render.write(run, args.output, baseline, checks)
    _print_report(path, render.verdict(run, evaluate(checks, RunSummary.from_dict(run.summary))), args.json)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from loadwise.analysis.summary import RunSummary
    from loadwise.analysis.thresholds import evaluate
    from loadwise.reports import data, render

    checks = thresholds(args)
    base, run = data.load(args.run_a), data.load(args.run_b)
    out = args.output or run.run_dir.path / f"compare-{base.info.id}.html"
    path = render.write(run, out, base, checks)
    _print_report(path, render.verdict(run, evaluate(checks, RunSummary.from_dict(run.summary))), args.json)
    return EXIT_OK
