"""The `loadwise` command line. I/O lives here; the work is done by the modules it calls.

Exit codes: 0 ok; 1 the run failed or was interrupted; 2 bad arguments, missing or
malformed files (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from analysis.history import HistoryError
from analysis.rundir import STATUS_COMPLETED, RunDir, RunDirError, json_safe
from analysis.thresholds import Threshold, ThresholdError, evaluate
from analysis.thresholds import parse as parse_threshold
from capacity.models import CapacityError
from capacity.planning import CapacitySettings
from loadwise.config import ConfigError, Profile, load_profile, prometheus_settings, scrape_urls, threshold_texts
from loadwise.console import endpoint_table
from loadwise.durations import parse_duration
from loadwise.live import LiveDisplay
from loadwise.runner import RunError, RunResult, RunSpec, execute, validate
from scenarios import SCENARIOS
from scenarios.shapes import SHAPES, ShapeError, parse_shape_params, shape_parameters

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of a usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _key_values(items: list[str], option: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be longer than zero")
    return seconds


def _shapes_help() -> str:
    lines = ["shapes (--shape NAME, parameters with --shape-param KEY=VALUE):"]
    for name, cls in SHAPES.items():
        params = ", ".join(shape_parameters(cls)) or "no parameters"
        lines.append(f"  {name:<9} {cls.help} [{params}]")
    return "\n".join(lines)


def _add_load_options(parser: argparse.ArgumentParser, *, duration: str, shape: str, users: int) -> None:
    parser.add_argument("--shape", default=shape, choices=list(SHAPES), help=f"load shape (default {shape})")
    parser.add_argument("--users", "-u", type=int, default=users, help=f"peak concurrent users (default {users})")
    parser.add_argument("--spawn-rate", "-r", type=float, help="users started per second (default: per shape)")
    parser.add_argument("--duration", "-t", type=_duration, default=_duration(duration), help=f"run time, e.g. 90s, 5m (default {duration})")
    parser.add_argument("--shape-param", action="append", default=[], metavar="KEY=VALUE", help="shape parameter, e.g. steps=6; repeatable")
    parser.add_argument("--workers", type=int, default=0, help="local Locust worker processes driven by a master (default 0: one local process)")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="where run directories go (default runs/)")
    parser.add_argument("--interval", type=float, default=5.0, help="recorder interval in seconds (default 5)")
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="tag stored in run.json; repeatable")
    parser.add_argument("--json", action="store_true", help="print one JSON object (run directory, status, summary) instead of text")
    parser.add_argument("--prometheus", metavar="URL", help="after the run, pull the target's metrics from this Prometheus (range queries)")
    parser.add_argument("--scrape", action="append", default=[], metavar="URL", help="scrape this /metrics URL every interval during the run; repeatable")
    parser.add_argument("--exporter-port", type=int, metavar="PORT", help="serve the run's own metrics for Prometheus on 127.0.0.1:PORT")


def build_parser() -> Parser:
    parser = Parser(prog="loadwise", description="Load tests with Locust that end in answers.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    run = sub.add_parser(
        "run",
        help="run one load test",
        description="Run a Locust load test with the loadwise recorder and write runs/<run_id>/.",
        epilog=_shapes_help()
        + "\n\nThe last line of standard output is the run directory. Exit code 0: completed; "
        "1: failed (no request succeeded) or interrupted; 2: bad input.\n"
        "example: loadwise run browse --host http://127.0.0.1:8000 --shape step --users 60 --duration 2m",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("scenario", metavar="SCENARIO", help=f"built-in ({', '.join(SCENARIOS)}) or the path of your locustfile")
    run.add_argument("--host", help="base URL of the system under test (default: the profile's host)")
    run.add_argument("--profile", help="profile in loadwise.toml (host, allowed_hosts ...)")
    run.add_argument("--config", type=Path, help="configuration file (default ./loadwise.toml)")
    run.add_argument("--target-commit", help="git commit of the system under test, stored in run.json")
    _add_load_options(run, duration="60s", shape="constant", users=10)

    demo = sub.add_parser(
        "demo",
        help="run the demo end to end (target, step load, run directory)",
        description="Start the demo shop on a free loopback port, run the browse scenario with a step shape, "
        "print a per-endpoint summary and the run directory, and stop the shop.",
    )
    demo.add_argument("--target-workers", type=int, default=1, help="worker processes of the demo target (replicas; default 1)")
    demo.add_argument("--rows", type=int, default=20000, help="products seeded in the demo database (default 20000)")
    _add_load_options(demo, duration="60s", shape="step", users=250)

    report = sub.add_parser(
        "report", help="render a run's self-contained HTML report",
        description="Render report.html for a run directory (one file, no network requests). "
        "The verdict uses the profile's slos/thresholds and any --threshold.",
    )  # fmt: skip
    report.add_argument("run", metavar="RUN", help="run directory")
    report.add_argument("--baseline", metavar="RUN", help="overlay this earlier run and show per-endpoint deltas")
    report.add_argument("-o", "--output", type=Path, help="write here (default RUN/report.html)")
    _add_verdict_options(report)

    compare = sub.add_parser("compare", help="side-by-side report of two runs (before/after, blue/green)",
                             description="Render a comparison of RUN_B against RUN_A (the baseline).")
    compare.add_argument("run_a", metavar="RUN_A", help="baseline run directory")
    compare.add_argument("run_b", metavar="RUN_B", help="run directory compared with it")
    compare.add_argument("-o", "--output", type=Path, help="write here (default RUN_B/compare-<RUN_A id>.html)")
    _add_verdict_options(compare)

    cap = sub.add_parser(
        "capacity", help="capacity model, knee, SLO-bound capacity and replicas from a step run",
        description="Fit USL / Amdahl / linear to the steady steps of a step run, find the knee and the highest "
        "throughput that meets the SLO, and plan replicas for a target load. `loadwise capacity fit FILE.csv` fits "
        "published data instead (columns N and X).",
        epilog="examples:\n  loadwise capacity runs/20261126T130000Z-browse --slo 'p95<300ms' --target-rps 2000\n"
        "  loadwise capacity fit specsdm91.csv --model usl --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    cap.add_argument("run", metavar="RUN", help="run directory of a step run, or the word fit")
    cap.add_argument("file", metavar="FILE.csv", nargs="?", help="with fit: CSV with columns N and X")
    cap.add_argument("--slo", metavar="EXPR", help="latency SLO, e.g. 'p95<300ms' (default: the profile's first p50/p95/p99 SLO)")
    cap.add_argument("--target-rps", type=float, help="load to plan replicas for (requests/s)")
    cap.add_argument("--margin", type=float, default=0.30, help="safety margin on top of the target (default 0.30)")
    cap.add_argument("--replicas-in-run", type=int, default=1, help="instances that served the run (default 1)")
    cap.add_argument("--knee-fraction", type=float, default=0.5,
                     help="knee: where one more user adds less than this share of the first user's throughput (default 0.5)")
    cap.add_argument("--model", choices=["auto", "usl", "amdahl", "linear"], default="auto",
                     help="auto keeps the simplest model the data do not clearly reject (AICc)")
    cap.add_argument("--profile", help="profile in loadwise.toml (its slos)")
    cap.add_argument("--config", type=Path, help="configuration file (default ./loadwise.toml)")
    cap.add_argument("--json", action="store_true", help="print the result as one JSON object")

    gate = sub.add_parser(
        "gate", help="CI gate: thresholds, baseline comparison, run history (exit 1 on failure)",
        description="Decide whether RUN may pass: every threshold met, no regression against --baseline "
        "(block bootstrap over intervals, 95%% CI, minimum effect) and none against --history "
        "(E-Divisive change points). Exit code 0 pass, 1 failed, 2 bad input.",
        epilog="example:\n  loadwise gate runs/new --baseline runs/main --threshold 'p95<300ms' --junit gate.xml --markdown gate.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    gate.add_argument("run", metavar="RUN", help="run directory to judge")
    gate.add_argument("--baseline", metavar="RUN", help="compare with this run directory")
    gate.add_argument("--history", metavar="DB", nargs="?", const="runs/history.db",
                      help="add RUN to this history (SQLite file, default runs/history.db, or postgresql:// URL) and judge it against it")
    gate.add_argument("--window", choices=["all", "last-step"], default="all", help="the whole run or its last step (default all)")
    gate.add_argument("--warmup", type=_duration_or_zero, default=0.0, help="leave out this much of the start, e.g. 10s")
    gate.add_argument("--min-effect", type=_fraction, default=0.05, help="smallest change called a regression (default 5%%)")
    gate.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    gate.add_argument("--force", action="store_true", help="compare runs even when their scenario or shape differ")
    gate.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML (one testcase per check)")
    gate.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown summary (PR comment, CI step summary)")
    _add_verdict_options(gate)

    hist = sub.add_parser("history", help="look at the run history: list, show RUN_ID, trend",
                          description="The run history that `loadwise gate --history` keeps.")
    hist.add_argument("action", choices=["list", "show", "trend"])
    hist.add_argument("run_id", nargs="?", metavar="RUN_ID", help="with show: the run")
    hist.add_argument("--history", metavar="DB", default="runs/history.db", help="SQLite file or postgresql:// URL (default runs/history.db)")
    hist.add_argument("--scenario", help="only this scenario")
    hist.add_argument("--shape", help="only this shape")
    hist.add_argument("--endpoint", default="overall", help="with trend: 'overall' or 'METHOD name' (default overall)")
    hist.add_argument("--metric", default="p95_ms", help="with trend: p50_ms, p95_ms, p99_ms, mean_ms, error_rate, rps (default p95_ms)")
    hist.add_argument("--limit", type=int, default=30, help="most recent runs (default 30)")
    hist.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _duration_or_zero(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fraction(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction (e.g. 5% or 0.05)") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 100%")
    return value


def _add_verdict_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", action="append", default=[], metavar="EXPR",
                        help="e.g. 'p95<300ms', 'error_rate<1%%', 'GET /products/[id]: p95<50ms'; repeatable")
    parser.add_argument("--profile", help="profile in loadwise.toml whose slos/thresholds decide the verdict")
    parser.add_argument("--config", type=Path, help="configuration file (default ./loadwise.toml)")
    parser.add_argument("--json", action="store_true", help="print {\"report\": PATH, \"verdict\": ...} as JSON")


def _spec(args: argparse.Namespace, host: str, profile: Profile, scenario: str) -> RunSpec:
    exporter_port = args.exporter_port if args.exporter_port is not None else profile.settings.get("exporter_port")
    if exporter_port is not None and not (isinstance(exporter_port, int) and 0 < exporter_port < 65536):
        raise UsageError(f"exporter port {exporter_port!r} is not a TCP port")
    return RunSpec(
        scenario=scenario,
        host=host,
        shape=args.shape,
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration_s=args.duration,
        shape_params=parse_shape_params(args.shape_param),
        workers=args.workers,
        runs_dir=args.out,
        interval_s=args.interval,
        tags=_key_values(args.tag, "--tag"),
        target_commit=getattr(args, "target_commit", None),
        allowed_hosts=profile.allowed_hosts,
        scrape_urls=args.scrape or scrape_urls(profile),
        prometheus=prometheus_settings(profile, args.prometheus),
        exporter_port=exporter_port,
    )


def _report(result: RunResult, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"run_dir": str(result.run_dir.path), "status": result.status, "reason": result.reason, **result.summary}, indent=2))
    else:
        print(endpoint_table(result.summary))
        reason = f" ({result.reason})" if result.reason else ""
        print(f"status: {result.status}{reason}")
        print(result.run_dir.path)
    return EXIT_OK if result.status == STATUS_COMPLETED else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile, args.config)
    host = args.host or profile.host
    if not host:
        raise UsageError("no --host given and the profile names none")
    spec = _spec(args, host, profile, args.scenario)
    validate(spec)
    return _report(execute(spec, LiveDisplay()), args.json)


def cmd_demo(args: argparse.Namespace) -> int:
    from loadwise.demo_target import DemoTarget

    target = DemoTarget(workers=args.target_workers, rows=args.rows)
    if not args.scrape:
        args.scrape = [f"{target.url}/metrics"]
    spec = _spec(args, target.url, Profile(), "browse")
    validate(spec)
    print(f"demo: starting the demo shop on {target.url} ...", file=sys.stderr, flush=True)
    with target:
        print(f"demo: running browse, {args.shape} shape up to {args.users} users for {args.duration:g}s", file=sys.stderr, flush=True)
        result = execute(spec, LiveDisplay())
    from reports import data, render

    report_path = render.write(data.load(str(result.run_dir.path)))
    print(f"demo: report written to {report_path}", file=sys.stderr)
    return _report(result, args.json)


def _thresholds(args: argparse.Namespace) -> list[Threshold]:
    profile = load_profile(args.profile, args.config)
    return [parse_threshold(text) for text in threshold_texts(profile) + args.threshold]


def _print_report(path: Path, view_verdict: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"report": str(path), "verdict": view_verdict["label"], "headline": view_verdict["headline"]}))
    else:
        print(f"{view_verdict['label']}: {view_verdict['headline']}", file=sys.stderr)
        print(path)


def cmd_report(args: argparse.Namespace) -> int:
    from reports import data, render

    thresholds = _thresholds(args)
    run = data.load(args.run)
    baseline = data.load(args.baseline) if args.baseline else None
    path = render.write(run, args.output, baseline, thresholds)
    _print_report(path, render.verdict(run, evaluate(thresholds, run.summary)), args.json)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from reports import data, render

    thresholds = _thresholds(args)
    base, run = data.load(args.run_a), data.load(args.run_b)
    out = args.output or run.run_dir.path / f"compare-{base.info.id}.html"
    path = render.write(run, out, base, thresholds)
    _print_report(path, render.verdict(run, evaluate(thresholds, run.summary)), args.json)
    return EXIT_OK


def _latency_slo(args: argparse.Namespace) -> tuple[str, float] | None:
    texts = [args.slo] if args.slo else threshold_texts(load_profile(args.profile, args.config))
    for text in texts:
        threshold = parse_threshold(text)
        if threshold.endpoint is None and threshold.statistic in ("p50", "p95", "p99") and threshold.op in ("<", "<="):
            return threshold.statistic, threshold.limit
        if args.slo:
            raise UsageError(f"--slo {text!r}: a capacity SLO is an overall latency bound such as 'p95<300ms'")
    return None


def cmd_capacity(args: argparse.Namespace) -> int:
    from capacity import summary as capacity_report
    from capacity.fitfile import read_points
    from capacity.models import MODELS, select_model

    if args.run == "fit":
        if not args.file:
            raise UsageError("capacity fit needs FILE.csv with columns N and X")
        n, x = read_points(Path(args.file))
        model = select_model(n, x)[0] if args.model == "auto" else MODELS[args.model]().fit(n, x)
        out = model.to_dict()
        print(json.dumps(json_safe(out), indent=2) if args.json else capacity_report.model_text(out))
        return EXIT_OK
    if args.file:
        raise UsageError(f"unexpected argument {args.file!r} (only `capacity fit` takes a file)")
    if args.replicas_in_run < 1 or not 0 <= args.margin < 10 or not 0 < args.knee_fraction < 1:
        raise UsageError("--replicas-in-run must be >= 1, --margin between 0 and 10, --knee-fraction between 0 and 1")
    slo = _latency_slo(args)
    plan = capacity_report.analyze(Path(args.run), CapacitySettings(
        slo_ms=slo[1] if slo else None, slo_statistic=slo[0] if slo else "p95", target_rps=args.target_rps,
        margin=args.margin, knee_fraction=args.knee_fraction, replicas_in_run=args.replicas_in_run, model=args.model,
    ))  # fmt: skip
    print(json.dumps(json_safe(plan.to_dict()), indent=2) if args.json else capacity_report.plan_text(plan))
    report_html = Path(args.run) / "report.html"
    if report_html.exists():  # keep the report in step with summary.json
        from reports import data, render

        render.write(data.load(args.run))
    return EXIT_OK


def _windowed(path: str, args: argparse.Namespace) -> tuple[Any, Any]:
    from analysis import windows

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


def _history_series(store: Any, info: Any, summary: dict[str, Any], limit: int = 30) -> dict[tuple[str, str], list]:
    from analysis.gate import HISTORY_METRICS

    runs = [r.run_id for r in store.runs(info.scenario, info.shape or "", limit)]
    keys = [("overall", m) for m in HISTORY_METRICS]
    keys += [(f"{e['method']} {e['name']}", "p95_ms") for e in summary.get("endpoints", [])]
    return {key: store.series(runs, *key) for key in keys}


def cmd_gate(args: argparse.Namespace) -> int:
    from analysis import windows
    from analysis.gate import GateResult, history_checks
    from analysis.history import History
    from analysis.regression import compare_runs
    from reports import gate_formats

    if args.resamples < 100:
        raise UsageError("--resamples must be at least 100")
    thresholds = _thresholds(args)
    info, intervals = _windowed(args.run, args)
    summary = windows.window_summary(info, intervals)
    label = args.window + (f", after a {args.warmup:g}s warm-up" if args.warmup else "")
    result = GateResult(run_id=info.id, window=label, thresholds=evaluate(thresholds, summary))
    if args.baseline:
        base_info, base_intervals = _windowed(args.baseline, args)
        if not args.force and (base_info.scenario, base_info.shape) != (info.scenario, info.shape):
            raise UsageError(f"baseline {base_info.id} ran {base_info.scenario}/{base_info.shape}, this run "
                             f"{info.scenario}/{info.shape}: not comparable (use --force to compare anyway)")  # fmt: skip
        result.baseline_id = base_info.id
        result.comparisons = compare_runs(base_intervals, intervals, args.min_effect, args.resamples)
    if args.history:
        with History(args.history) as store:
            store.add(info, summary)
            result.history = history_checks(_history_series(store, info, summary), args.min_effect)
    run_dir = RunDir(args.run)
    stored = run_dir.read_summary() if (run_dir.path / "summary.json").exists() else {}
    stored["regression"] = result.report_block()
    stored["gate"] = result.to_dict()
    run_dir.write_summary(stored)
    if (run_dir.path / "report.html").exists():
        from reports import data, render

        render.write(data.load(args.run))
    if args.junit:
        args.junit.write_text(gate_formats.junit(result), encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(gate_formats.markdown(result), encoding="utf-8")
    if args.json:
        print(json.dumps(json_safe(result.to_dict()), indent=2))
    else:
        print(gate_formats.markdown(result), end="")
    return EXIT_OK if result.passed else EXIT_FAILED


def cmd_history(args: argparse.Namespace) -> int:
    from analysis.changepoints import change_points
    from analysis.history import History

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


COMMANDS = {"run": cmd_run, "demo": cmd_demo, "report": cmd_report, "compare": cmd_compare, "capacity": cmd_capacity,
            "gate": cmd_gate, "history": cmd_history}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except (UsageError, ConfigError, ShapeError, RunError, RunDirError, ThresholdError, CapacityError, HistoryError) as exc:
        print(f"loadwise {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"loadwise {args.command}: interrupted", file=sys.stderr)
        return EXIT_FAILED


def run_main() -> Any:
    sys.exit(main())
