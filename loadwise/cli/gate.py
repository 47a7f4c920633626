"""`loadwise gate` (the CI gate: thresholds, baseline, history) and `loadwise history`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from loadwise.analysis.gate_settings import GateSettings
from loadwise.cli.args import add_settings
from loadwise.cli.common import add_verdict_options, store_results, thresholds
from loadwise.errors import EXIT_FAILED, EXIT_OK, UsageError

DEFAULT_HISTORY = "runs/history.db"


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


def _windowed(path: str, args: argparse.Namespace) -> tuple[Any, Any]:
    from loadwise.analysis import windows
    from loadwise.analysis.rundir import RunDir

    run_dir = RunDir(path)
    if not run_dir.path.is_dir():
        raise UsageError(f"{path}: no such run directory")
    info = run_dir.read_info()
    intervals = run_dir.read_intervals()
    if intervals.empty or intervals["requests"].sum() == 0:
        raise UsageError(f"{path}: the run has no requests: nothing to judge")
    try:
        chosen = windows.select(info, intervals, args.window, args.warmup)
    except windows.WindowError as exc:
        raise UsageError(f"{path}: {exc}") from None
    if chosen.empty:
        raise UsageError(f"{path}: no interval left in the {args.window} window after a {args.warmup:g}s warm-up")
    return info, chosen


def _baseline_runs(given: list[str], run: str) -> list[str]:
    """Run directories from --baseline values: a run, a directory of runs, or a glob."""
    import glob

    paths: list[str] = []
    for item in given:
        if any(ch in item for ch in "*?["):
            matches = sorted(glob.glob(item))
            if not matches:
                raise UsageError(f"--baseline {item!r} matches no run directory")
            paths += matches
        elif Path(item).is_dir() and not (Path(item) / "run.json").exists():
            inside = sorted(str(p.parent) for p in Path(item).glob("*/run.json"))
            if not inside:
                raise UsageError(f"--baseline {item}: neither a run directory nor a directory of runs")
            paths += inside
        else:
            paths.append(item)
    own = Path(run).resolve()
    others = [p for p in dict.fromkeys(paths) if Path(p).resolve() != own]  # a glob may match the judged run
    if not others:
        raise UsageError(f"--baseline names only {run} itself: a run is not its own baseline (give an earlier run)")
    return others


def _calibrate(args: argparse.Namespace) -> int:
    """All ordered pairs of same-build runs through the gate's own comparison."""
    from loadwise.analysis.regression import NOT_JUDGED, REGRESSION, compare_runs
    from loadwise.analysis.rundir import json_safe

    runs = [_windowed(path, args) for path in _baseline_runs(args.calibrate, "")]
    if len(runs) < 3:
        raise UsageError("--calibrate needs at least 3 same-build runs")
    alarms, pairs, changes, alarmed = 0, 0, {}, {}
    for i, (_, base) in enumerate(runs):
        for j, (_, current) in enumerate(runs):
            if i == j:
                continue
            pairs += 1
            found = compare_runs(base, current, args.min_effect, args.resamples, min_delta_ms=args.min_delta)
            alarms += any(c.decision == REGRESSION for c in found)
            for c in found:
                if c.decision == REGRESSION:
                    alarmed[f"{c.endpoint} {c.metric}"] = alarmed.get(f"{c.endpoint} {c.metric}", 0) + 1
            for c in found:
                if c.decision != NOT_JUDGED and c.change is not None:
                    changes.setdefault((c.endpoint, c.metric), []).append(abs(c.change))
    detectable = {f"{e} {m}": max(v) for (e, m), v in sorted(changes.items())}
    out = {"runs": len(runs), "pairs": pairs, "false_alarms": alarms, "false_alarm_rate": alarms / pairs,
           "false_alarms_by_metric": alarmed, "largest_same_build_change": detectable}  # fmt: skip
    if args.json:
        print(json.dumps(json_safe(out), indent=2))
        return EXIT_OK
    print(f"{alarms} of {pairs} ordered same-build pairs failed the gate ({alarms / pairs:.1%} false alarms)"
          + (f": {', '.join(f'{k} ({n})' for k, n in sorted(alarmed.items()))}" if alarmed else ""))
    print("largest change between two same-build runs (a smaller change cannot be told from noise):")
    for key, value in detectable.items():
        print(f"  {key}: {value:.1%}" if not key.endswith("error_rate") else f"  {key}: {100 * value:.2f} pp")
    return EXIT_OK


def _history_series(store: Any, info: Any, summary: dict[str, Any], limit: int = 30) -> dict[tuple[str, str], list]:
    from loadwise.analysis.gate import HISTORY_METRICS

    runs = [r.run_id for r in store.runs(info.scenario, info.shape or "", limit)]
    keys = [("overall", m) for m in HISTORY_METRICS]
    keys += [(f"{e['method']} {e['name']}", "p95_ms") for e in summary.get("endpoints", [])]
    return {key: store.series(runs, *key) for key in keys}


def cmd_gate(args: argparse.Namespace) -> int:
    from loadwise.analysis import windows
    from loadwise.analysis.gate import GateResult, history_checks
    from loadwise.analysis.history import History
    from loadwise.analysis.regression import compare_runs, saturated
    from loadwise.analysis.rundir import STATUS_COMPLETED, RunDir, json_safe
    from loadwise.analysis.thresholds import evaluate
    from loadwise.reports import gate_formats

    if args.resamples < 100:
        raise UsageError("--resamples must be at least 100")
    if args.calibrate:
        if args.run or args.baseline or args.history:
            raise UsageError("--calibrate takes only its runs (no RUN, --baseline or --history)")
        return _calibrate(args)
    if not args.run:
        raise UsageError("give the RUN to judge (or --calibrate RUNS...)")
    checks = thresholds(args)
    info, intervals = _windowed(args.run, args)
    summary = windows.window_summary(info, intervals)
    label = args.window + (f", after a {args.warmup:g}s warm-up" if args.warmup else "")
    result = GateResult(run_id=info.id, window=label, thresholds=evaluate(checks, summary))
    if info.status != STATUS_COMPLETED:
        result.run_problem = f"the run is {info.status}" + (f": {info.status_reason}" if info.status_reason else "")
    if args.baseline:
        baselines = [_windowed(path, args) for path in _baseline_runs(args.baseline, args.run)]
        for base_info, _ in baselines:
            if not args.force and (base_info.scenario, base_info.shape) != (info.scenario, info.shape):
                raise UsageError(f"baseline {base_info.id} ran {base_info.scenario}/{base_info.shape}, this run "
                                 f"{info.scenario}/{info.shape}: not comparable (use --force to compare anyway)")  # fmt: skip
        result.baseline_id = ", ".join(b.id for b, _ in baselines)
        result.comparisons = compare_runs([frame for _, frame in baselines], intervals, args.min_effect, args.resamples,
                                          min_delta_ms=args.min_delta)  # fmt: skip
    if args.history:
        with History(args.history) as store:
            store.add(info, summary)
            requests = {"overall": int(summary.get("overall", {}).get("requests") or 0)}
            requests |= {f"{e['method']} {e['name']}": int(e.get("requests") or 0) for e in summary.get("endpoints", [])}
            result.history = history_checks(_history_series(store, info, summary), args.min_effect, args.min_delta,
                                            judge_rate=bool(saturated(intervals)), requests=requests)  # fmt: skip
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
