"""The work behind each `loadwise` command: read inputs, call the pure modules, write
outputs. Bad input raises UsageError (or a module's own error), which the CLI turns into
one line and exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from loadwise.analysis.rundir import STATUS_COMPLETED, RunDir, json_safe
from loadwise.analysis.thresholds import Threshold, evaluate
from loadwise.analysis.thresholds import parse as parse_threshold
from loadwise.capacity.planning import CapacitySettings
from loadwise.config import Profile, load_profile, prometheus_settings, scrape_urls, threshold_texts
from loadwise.cli.console import endpoint_table
from loadwise.run.live import LiveDisplay
from loadwise.run import handoff
from loadwise.run.runner import RunResult, RunSpec, check_scenario, execute, validate, worker_args
from loadwise.scenarios.shapes import parse_shape_params

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""



def _key_values(items: list[str], option: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def store_results(run_dir: RunDir, **entries: Any) -> None:
    """Add analysis results to the run's summary.json and keep its report (if any) in step."""
    stored = run_dir.read_summary() if (run_dir.path / "summary.json").exists() else {}
    stored.update(entries)
    run_dir.write_summary(stored)
    if (run_dir.path / "report.html").exists():
        from loadwise.reports import data, render

        render.write(data.load(str(run_dir.path)))


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
        db_dsn=_profile_dsn(profile),
        cache_endpoints=args.cache_endpoint,
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
    spec.expect_workers, spec.listen, spec.master_port = args.expect_workers, args.listen, args.master_port
    validate(spec)
    if args.hold:
        handoff.clear(args.out)
    result = execute(spec, LiveDisplay())
    code = _report(result, args.json)
    if args.hold:
        handoff.hold(args.out, handoff.Done(result.run_dir.path.name, result.status, code), args.hold)
    return code


def cmd_worker(args: argparse.Namespace) -> int:
    """Become a Locust worker (exec: signals reach Locust directly, as in a pod)."""
    check_scenario(args.scenario)
    if not 0 < args.master_port < 65536:
        raise UsageError(f"--master-port {args.master_port} is not a TCP port")
    argv = worker_args(args.scenario, args.master_host, args.master_port, args.interval, args.cache_endpoint)
    os.execv(argv[0], argv)
    return EXIT_FAILED  # not reached


def cmd_k8s(args: argparse.Namespace) -> int:
    from loadwise.k8s.follow import follow as k8s
    def show(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    cluster = k8s.Cluster(args.namespace, args.context)
    if args.action == "follow":
        try:
            done = k8s.follow(cluster, args.release, args.timeout, show)
        except k8s.MasterFailed as exc:
            print(f"loadwise k8s: {exc}", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK if done is None or done.status == STATUS_COMPLETED else EXIT_FAILED
    path = k8s.fetch(cluster, args.release, args.out, show)
    print(path)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from loadwise.run.demo_target import DemoTarget

    target = DemoTarget(workers=args.target_workers, rows=args.rows)
    if not args.scrape:
        args.scrape = [f"{target.url}/metrics"]
    spec = _spec(args, target.url, Profile(), "browse")
    validate(spec)
    print(f"demo: starting the demo shop on {target.url} ...", file=sys.stderr, flush=True)
    with target:
        print(f"demo: running browse, {args.shape} shape up to {args.users} users for {args.duration:g}s", file=sys.stderr, flush=True)
        result = execute(spec, LiveDisplay())
    from loadwise.reports import data, render

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
    from loadwise.reports import data, render

    thresholds = _thresholds(args)
    run = data.load(args.run)
    baseline = data.load(args.baseline) if args.baseline else None
    path = render.write(run, args.output, baseline, thresholds)
    _print_report(path, render.verdict(run, evaluate(thresholds, run.summary)), args.json)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from loadwise.reports import data, render

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
    from loadwise.capacity import summary as capacity_report
    from loadwise.capacity.fitfile import read_points
    from loadwise.capacity.models import MODELS, select_model

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
    settings = CapacitySettings(
        slo_ms=slo[1] if slo else None, slo_statistic=slo[0] if slo else "p95", target_rps=args.target_rps,
        margin=args.margin, knee_fraction=args.knee_fraction, replicas_in_run=args.replicas_in_run, model=args.model,
    )  # fmt: skip
    plan = capacity_report.analyze(Path(args.run), settings)
    store_results(RunDir(args.run), capacity=plan.to_dict() | {"settings": vars(settings)})
    print(json.dumps(json_safe(plan.to_dict()), indent=2) if args.json else capacity_report.plan_text(plan))
    return EXIT_OK


def _windowed(path: str, args: argparse.Namespace) -> tuple[Any, Any]:
    from loadwise.analysis import windows

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
    from loadwise.analysis.gate import HISTORY_METRICS

    runs = [r.run_id for r in store.runs(info.scenario, info.shape or "", limit)]
    keys = [("overall", m) for m in HISTORY_METRICS]
    keys += [(f"{e['method']} {e['name']}", "p95_ms") for e in summary.get("endpoints", [])]
    return {key: store.series(runs, *key) for key in keys}


def cmd_gate(args: argparse.Namespace) -> int:
    from loadwise.analysis import windows
    from loadwise.analysis.gate import GateResult, history_checks
    from loadwise.analysis.history import History
    from loadwise.analysis.regression import compare_runs
    from loadwise.reports import gate_formats

    if args.resamples < 100:
        raise UsageError("--resamples must be at least 100")
    thresholds = _thresholds(args)
    info, intervals = _windowed(args.run, args)
    summary = windows.window_summary(info, intervals)
    label = args.window + (f", after a {args.warmup:g}s warm-up" if args.warmup else "")
    result = GateResult(run_id=info.id, window=label, thresholds=evaluate(thresholds, summary))
    if info.status != STATUS_COMPLETED:
        result.run_problem = f"the run is {info.status}" + (f": {info.status_reason}" if info.status_reason else "")
    if args.baseline:
        base_info, base_intervals = _windowed(args.baseline, args)
        if not args.force and (base_info.scenario, base_info.shape) != (info.scenario, info.shape):
            raise UsageError(f"baseline {base_info.id} ran {base_info.scenario}/{base_info.shape}, this run "
                             f"{info.scenario}/{info.shape}: not comparable (use --force to compare anyway)")  # fmt: skip
        result.baseline_id = base_info.id
        result.comparisons = compare_runs(base_intervals, intervals, args.min_effect, args.resamples,
                                          min_delta_ms=args.min_delta)
    if args.history:
        with History(args.history) as store:
            store.add(info, summary)
            result.history = history_checks(_history_series(store, info, summary), args.min_effect, args.min_delta)
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


def _profile_dsn(profile: Profile) -> str | None:
    """The DSN from the environment variable the profile names, if it names one."""
    import os

    name = profile.settings.get("db_dsn_env")
    if not name:
        return None
    value = os.environ.get(str(name))
    if not value:
        raise UsageError(f"the profile's db_dsn_env names {name}, which is not set")
    return value
