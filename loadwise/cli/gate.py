"""`loadwise gate` (the CI gate: thresholds, baseline, history) and `loadwise history`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from loadwise.analysis.gate_settings import GateSettings
from loadwise.cli.args import add_settings, settings_from
from loadwise.cli.common import add_verdict_options, store_results, thresholds
from loadwise.engine.options import RUNS_DIR
from loadwise.errors import EXIT_FAILED, EXIT_OK, UsageError

DEFAULT_HISTORY = f"{RUNS_DIR.default}/history.db"  # beside the runs it judges


def register(sub: Any) -> None:
    gate = sub.add_parser(
        "gate", help="CI gate: thresholds, baseline comparison, run history (exit 1 on failure)",
        description="Decide whether RUN may pass: every threshold met, no regression against --baseline "
        "(block bootstrap over intervals, 99% CI, minimum effect) and none against --history "
        "(E-Divisive change points). Exit code 0 pass, 1 failed, 2 bad input.",
        epilog="examples:\n  loadwise gate runs/new --baseline runs/main --threshold 'p95<300ms' --junit gate.xml --markdown gate.md\n"
        "  loadwise gate runs/new --baseline 'runs/main-*'          # several same-build runs: their spread decides\n"
        "  loadwise gate --calibrate runs/aa-*                      # false alarms and detectable change on this machine",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    gate.add_argument("run", metavar="RUN", nargs="?", help="run directory to judge")
    gate.add_argument("--baseline", metavar="RUN", action="append", default=[],
                      help="compare with this run directory; repeat it, or give a directory of runs or a glob, to judge "
                      "against the run-to-run spread of several same-build runs (same scenario and shape)")
    gate.add_argument("--calibrate", metavar="RUN", nargs="+",
                      help="instead of judging RUN: from these same-build runs, the all-pairs false-alarm rate of the "
                      "current settings and the smallest change each metric can detect")
    gate.add_argument("--history", metavar="DB", nargs="?", const=DEFAULT_HISTORY,
                      help=f"add RUN to this history (SQLite file, default {DEFAULT_HISTORY}, or postgresql:// URL) and judge it against it")
    add_settings(gate, GateSettings)
    gate.add_argument("--force", action="store_true", help="compare runs even when their scenario or shape differ")
    gate.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML (one testcase per check)")
    gate.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown summary (PR comment, CI step summary)")
    add_verdict_options(gate, "print the verdict as one JSON object")
    gate.set_defaults(handler=cmd_gate)

    hist = sub.add_parser("history", help="look at the run history: list, show RUN_ID, trend",
                          description="The run history that `loadwise gate --history` keeps.")
    hist.add_argument("action", choices=["list", "show", "trend"])
    hist.add_argument("run_id", nargs="?", metavar="RUN_ID", help="with show: the run")
    hist.add_argument("--history", metavar="DB", default=DEFAULT_HISTORY, help=f"SQLite file or postgresql:// URL (default {DEFAULT_HISTORY})")
    hist.add_argument("--scenario", help="only this scenario")
    hist.add_argument("--shape", help="only this shape")
    hist.add_argument("--endpoint", default="overall", help="with trend: 'overall' or 'METHOD name' (default overall)")
    hist.add_argument("--metric", default="p95_ms", help="with trend: p50_ms, p95_ms, p99_ms, mean_ms, error_rate, rps (default p95_ms)")
    hist.add_argument("--limit", type=int, default=30, help="most recent runs (default 30)")
    hist.add_argument("--json", action="store_true", help="machine-readable output")
    hist.set_defaults(handler=cmd_history)


def _print_calibration(found: Any) -> None:
    print(f"{found.false_alarms} of {found.pairs} ordered same-build pairs failed the gate "
          f"({found.false_alarm_rate:.1%} false alarms)"
          + (f": {', '.join(f'{k} ({n})' for k, n in sorted(found.false_alarms_by_metric.items()))}"
             if found.false_alarms_by_metric else ""))  # fmt: skip
    print("largest change between two same-build runs (a smaller change cannot be told from noise):")
    for key, value in found.largest_same_build_change.items():
        print(f"  {key}: {value:.1%}" if not key.endswith("error_rate") else f"  {key}: {100 * value:.2f} pp")


def cmd_gate(args: argparse.Namespace) -> int:
    from loadwise.analysis import gate
    from loadwise.analysis.history import History
    from loadwise.analysis.rundir import RunDir, json_safe
    from loadwise.reports import gate_formats

    settings = settings_from(args, GateSettings)
    if args.calibrate:
        if args.run or args.baseline or args.history:
            raise UsageError("--calibrate takes only its runs (no RUN, --baseline or --history)")
        found = gate.calibrate([gate.load_run(p, settings) for p in gate.baseline_paths(args.calibrate, "")], settings)
        if args.json:
            print(json.dumps(json_safe(found.to_dict()), indent=2))
        else:
            _print_calibration(found)
        return EXIT_OK
    if not args.run:
        raise UsageError("give the RUN to judge (or --calibrate RUNS...)")
    checks = thresholds(args)
    run = gate.load_run(args.run, settings)
    baselines = [gate.load_run(p, settings) for p in gate.baseline_paths(args.baseline, args.run)] if args.baseline else []
    if args.history:
        with History(args.history) as store:
            result = gate.judge(run, settings, checks, baselines, history=store, force=args.force)
    else:
        result = gate.judge(run, settings, checks, baselines, force=args.force)
    if args.junit:
        args.junit.write_text(gate_formats.junit(result), encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(gate_formats.markdown(result), encoding="utf-8")
    store_results(RunDir(args.run), regression=result.report_block(), gate=result.to_dict())
    if args.json:
        print(json.dumps(json_safe(result.to_dict()), indent=2))
    else:
        print(gate_formats.markdown(result), end="")
    return EXIT_OK if result.passed else EXIT_FAILED


def cmd_history(args: argparse.Namespace) -> int:
    from loadwise.analysis.changepoints import change_points
    from loadwise.analysis.history import History
    from loadwise.cli.console import endpoint_table

    if args.action != "show" and args.run_id:
        raise UsageError(f"history {args.action} takes no RUN_ID")
    if not args.history.startswith(("postgresql://", "postgres://")) and not Path(args.history).exists():
        raise UsageError(f"{args.history}: no such history (loadwise gate --history creates it)")
    with History(args.history) as store:
        if args.action == "list":
            runs = store.runs(args.scenario, args.shape, args.limit)
            if args.json:
                print(json.dumps([vars(r) for r in runs], indent=2))
            for r in [] if args.json else runs:
                print(f"{r.run_id}  {r.scenario}/{r.shape or '-'}  {r.status}  {r.target_commit or ''}")
        elif args.action == "show":
            if not args.run_id:
                raise UsageError("history show needs a RUN_ID")
            summary = store.summary(args.run_id)
            if summary is None:
                raise UsageError(f"no run {args.run_id!r} in {args.history}")
            print(json.dumps(summary, indent=2) if args.json else endpoint_table(summary))
        else:
            runs = store.runs(args.scenario, args.shape, args.limit)
            values = store.series([r.run_id for r in runs], args.endpoint, args.metric)
            present = [(r, v) for r, v in zip(runs, values) if v is not None]
            cps = set(change_points([v for _, v in present])) if len(present) >= 6 else set()
            if args.json:
                print(json.dumps([{"run_id": r.run_id, "value": v, "regime_starts": i in cps} for i, (r, v) in enumerate(present)], indent=2))
            else:
                print(f"{args.endpoint} {args.metric} over {len(present)} run(s); '>' marks the start of a new regime")
                for i, (r, v) in enumerate(present):
                    print(f"{'>' if i in cps else ' '} {r.run_id}  {v:.4g}")
    return EXIT_OK
