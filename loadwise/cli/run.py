"""`loadwise run`, `loadwise worker` and `loadwise demo`: one load test, start to finished run directory."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from loadwise import readers as types
from loadwise.cli.args import Parser
from loadwise.cli.common import add_profile_options, key_values, profile_dsn, store_results
from loadwise.errors import EXIT_FAILED, EXIT_OK, LoadwiseError, UsageError
from loadwise.engine import options
from loadwise.scenarios import SCENARIOS
from loadwise.settings import DEFAULT_LISTEN, DEFAULT_MASTER_PORT, DEFAULT_USERS
from loadwise.shapes.catalog import DEFAULT_DURATION_S, SHAPES, shape_parameters
from loadwise.shapes.rates import RATE_SHAPE_NAMES, ArrivalOptions


# The demo offers a rate in steps past what one demo shop worker serves (~1,000 req/s measured on
# 2 cores), each step long enough for 1 s intervals to give it a steady part.
DEMO_RATE = 1400.0
DEMO_DURATION_S = 60.0
DEMO_STEPS = 7
DEMO_INTERVAL_S = 1.0


def _shapes_help() -> str:
    lines = ["shapes (--shape NAME, parameters with --shape-param KEY=VALUE):"]
    for name, cls in SHAPES.items():
        params = ", ".join(shape_parameters(cls)) or "no parameters"
        lines.append(f"  {name:<13} {cls.help} [{params}]")
    lines += [
        "",
        "Rate shapes (constant-rate, ramping-rate, step-rate) are the open model: iterations (one task of the",
        "locustfile's users) arrive at --rate per second whatever the target does, each started by a free user of",
        "a pool (--users pre-spawned, growing up to --max-users); the users' wait_time does not apply. An arrival",
        "that finds no free user starts late, up to --max-lateness, then is dropped and counted. Latencies (p95 ...)",
        "are measured from each request's intended start (coordinated omission corrected); service_p95_ms ... in",
        "summary.json are the service times alone. run.json `open_model` counts scheduled, started, late and",
        "dropped iterations and says whether the load generator itself was saturated.",
        "example: loadwise run browse --host http://127.0.0.1:8000 --shape step-rate --rate 400 --duration 2m",
    ]
    return "\n".join(lines)


def _add_load_options(parser: argparse.ArgumentParser, *, duration: str, shape: str | None, users: int,
                      rate: float | None = ArrivalOptions.rate, interval: float = options.INTERVAL.default) -> None:  # fmt: skip
    # The options Locust's parser also takes come from their one declaration (loadwise.engine.options).
    shape_help = "load shape" if shape else "load shape (default: the locustfile's own LoadTestShape if it has one, else constant)"
    options.SHAPE.add(parser, default=shape, choices=list(SHAPES), help=shape_help)
    parser.add_argument("--users", "-u", type=int, default=users, help=f"peak concurrent users (default {users})")
    parser.add_argument("--spawn-rate", "-r", type=float, help="users started per second (default: per shape)")
    duration_help = f"run time, e.g. 90s, 5m (default {duration}" + (
        "; a locustfile's own shape runs as long as it says unless this caps it)" if shape is None else ")")
    parser.add_argument("--duration", "-t", "--run-time", type=types.duration, default=None, help=duration_help)
    parser.set_defaults(default_duration=types.duration(duration))
    options.SHAPE_PARAM.add(parser)
    rates = parser.add_argument_group("rate shapes (open model; see below)")
    for field, option in options.ARRIVAL_OPTIONS.items():
        option.add(rates, default=rate if field == "rate" else option.default)
    parser.add_argument("--workers", type=types.workers, default=0,
                        help="local Locust worker processes driven by a master (default 0: one local process; auto: one per CPU core)")
    options.RUNS_DIR.add(parser, "--out", type=Path)
    options.INTERVAL.add(parser, default=interval)
    options.TAG.add(parser, "--tag")
    parser.add_argument("--json", action="store_true", help="print one JSON object (run directory, status, summary) instead of text")
    parser.add_argument("--prometheus", metavar="URL", help="after the run, pull the target's metrics from this Prometheus (range queries)")
    parser.add_argument("--scrape", action="append", default=[], metavar="URL", help="scrape this /metrics URL every interval during the run; repeatable")
    # The profile's exporter_port applies when the option is not given (None).
    options.EXPORTER_PORT.add(parser, default=None)
    options.CACHE_ENDPOINT.add(parser)
    options.ABORT_ON.add(parser, help=options.ABORT_ON.help + " (default: the profile's abort_on)")


def register(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run one load test",
        description="Run a Locust load test with the loadwise recorder and write runs/<run_id>/.",
        epilog=_shapes_help()
        + "\n\nThe last line of standard output is the run directory. Exit codes, as Locust gives them: 0 completed "
        "with no failed request; 1 (or --exit-code-on-error N) completed with failed requests; 1 failed (no request "
        "succeeded) or interrupted; 2 bad input. The run's status in run.json says which (completed = ran to its end).\n"
        "example: loadwise run browse --host http://127.0.0.1:8000 --shape step --users 60 --duration 2m\n\n"
        "Several scenarios at once, each with its own User classes, shape, start and tags (counted apart; thresholds "
        "name one as 'scenario=checkout: p95<300ms'):\n"
        "  loadwise run shop.py --host http://127.0.0.1:8000 --scenarios plan.toml   # [[scenario]] tables: name, "
        "classes, shape, users or rate, start, duration, tags (docs/scenarios.md)\n\n"
        "Locust's own options pass through to Locust's parser (put the locustfile first): --tags, --exclude-tags, "
        "--csv, --loglevel, --stop-timeout, --iterations, --config locust.conf, User class names, and options your "
        "locustfile adds with events.init_command_line_parser; ./locust.conf and LOCUST_* variables apply as in "
        "Locust. run.json records what shaped the run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # an abbreviation must not swallow a Locust option (--master is not --master-port)
    )
    run.add_argument("scenario", metavar="SCENARIO", nargs="?", help=f"built-in ({', '.join(SCENARIOS)}) or the path of your locustfile")
    run.add_argument("-f", "--locustfile", metavar="FILE", help="the locustfile, as Locust takes it (instead of SCENARIO)")
    options.SCENARIOS.add(run, help=options.SCENARIOS.help + "; a profile's [[profiles.NAME.scenario]] tables by default")
    run.add_argument("--host", "-H", help="base URL of the system under test (default: the profile's host, else each User class's host)")
    run.add_argument("--headless", action="store_true", help="accepted for Locust's sake: runs are headless unless --web-ui")
    run.add_argument("--web-ui", action="store_true",
                     help="serve Locust's web UI (on 127.0.0.1:8089 unless Locust's --web-host/--web-port say otherwise) "
                     "until Ctrl-C; each test started there is its own run directory, `completed` when stopped there")
    run.add_argument("--processes", type=types.workers, metavar="N",
                     help="as Locust's --processes: N local workers (-1: one per CPU core); same as --workers")
    add_profile_options(run, "host, allowed_hosts ...", locust_owns_config=True)
    options.TARGET_COMMIT.add(run)
    run.add_argument("--no-report", action="store_true", help="do not render report.html at the end of the run")
    run.add_argument("--html", type=Path, metavar="FILE", help="also write the HTML report to FILE (as Locust's --html)")
    run.add_argument("--exit-code-on-error", type=types.exit_code, default=EXIT_FAILED, metavar="N",
                     help=f"exit code of a completed run in which requests failed (default {EXIT_FAILED}, as Locust; 0 ignores failures)")
    _add_load_options(run, duration=f"{DEFAULT_DURATION_S:g}s", shape=None, users=DEFAULT_USERS)
    remote = run.add_argument_group("workers on other machines (the Helm chart's master Job uses these)")
    remote.add_argument("--expect-workers", type=int, default=0, metavar="N",
                        help="wait for N workers started elsewhere with `loadwise worker` (up to 5 minutes)")
    remote.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST",
                        help="address the master port and the exporter listen on (default 127.0.0.1; 0.0.0.0 in a pod)")
    remote.add_argument("--master-port", type=int, metavar="PORT",
                        help=f"port workers connect to (default {DEFAULT_MASTER_PORT} with --expect-workers)")
    remote.add_argument("--hold", type=types.duration, metavar="DURATION",
                        help="after the run, stay alive until `loadwise k8s fetch` copies the run directory out, at most DURATION")
    run.set_defaults(handler=cmd_run)

    worker = sub.add_parser(
        "worker", help="a Locust worker that joins a master elsewhere (`loadwise run --expect-workers`)",
        description="Run one Locust worker with the loadwise recorder for SCENARIO and connect it to a master. "
        "The master merges its histograms; the worker writes nothing itself. Locust's own options and a "
        "locustfile's options pass through as in `loadwise run` (--tags, --stop-timeout, User class names ...); "
        "those only a master acts on (--csv, --html, --json, -t) are dropped, as Locust drops them.",
        epilog=f"example: loadwise worker browse --master-host loadwise-master --master-port {DEFAULT_MASTER_PORT}",
    )  # fmt: skip
    worker.add_argument("scenario", metavar="SCENARIO", nargs="?", help=f"built-in ({', '.join(SCENARIOS)}) or the path of a locustfile; the master's")
    worker.add_argument("-f", "--locustfile", metavar="FILE", help="the locustfile, as Locust takes it (instead of SCENARIO)")
    worker.add_argument("--master-host", required=True, help="the master's host name or address")
    worker.add_argument("--master-port", type=int, default=DEFAULT_MASTER_PORT, help=f"the master's port (default {DEFAULT_MASTER_PORT})")
    options.INTERVAL.add(worker, help="recorder interval in seconds: the master's")
    options.SCENARIOS.add(worker, help="several scenarios at once: the master's plan (the same TOML file)")
    options.SHAPE.add(worker, choices=sorted(RATE_SHAPE_NAMES),
                      help="the master's rate shape, when it runs one (its users then wait for the master's arrivals)")
    options.CACHE_ENDPOINT.add(worker, help="as given to the master; repeatable")
    worker.set_defaults(handler=cmd_worker)

    demo = sub.add_parser(
        "demo",
        help="run the demo end to end (target, step-rate load past its capacity, capacity knee, report)",
        description="Start the demo shop on a free loopback port, run the browse scenario with a step-rate shape "
        f"({DEMO_STEPS} steps of arrival rate up to {DEMO_RATE:g}/s, past one shop worker's capacity on a typical "
        "machine), find the capacity knee (offered against achieved) and the model, print a per-endpoint summary, "
        "write the report and stop the shop.",
    )
    demo.add_argument("--target-workers", type=int, default=1, help="worker processes of the demo target (replicas; default 1)")
    demo.add_argument("--rows", type=int, default=20000, help="products seeded in the demo database (default 20000)")
    _add_load_options(demo, duration=f"{DEMO_DURATION_S:g}s", shape="step-rate", users=20, rate=DEMO_RATE, interval=DEMO_INTERVAL_S)
    demo.set_defaults(handler=cmd_demo)


def _spec(args: argparse.Namespace, host: str, profile: Any, scenario: str) -> Any:
    from loadwise.config import abort_texts, prometheus_settings, scenarios_of, scrape_urls
    from loadwise.run.runner import RunSpec
    from loadwise.scenarios.plan import duration_s, read_scenarios
    from loadwise.shapes.catalog import AUTO_SHAPE, parse_shape_params

    exporter_port = args.exporter_port if args.exporter_port is not None else profile.settings.get("exporter_port")
    if exporter_port is not None and not (isinstance(exporter_port, int) and 0 < exporter_port < 65536):
        raise UsageError(f"exporter port {exporter_port!r} is not a TCP port")
    scenarios = read_scenarios(Path(args.scenarios)) if getattr(args, "scenarios", None) else scenarios_of(profile)
    if scenarios and args.shape:
        raise UsageError(f"--shape {args.shape} and scenarios: each scenario has its own shape (drop --shape)")
    return RunSpec(
        scenario=scenario,
        scenarios=scenarios,
        host=host,
        shape=args.shape or AUTO_SHAPE,
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration_s=duration_s(scenarios) if scenarios else args.duration or args.default_duration,
        duration_given=bool(scenarios) or args.duration is not None,
        shape_params=parse_shape_params(args.shape_param),
        arrivals=options.arrival_options(args),
        workers=_workers(args),
        runs_dir=args.out,
        interval_s=args.interval,
        tags=key_values(args.tag, "--tag"),
        target_commit=getattr(args, "target_commit", None),
        allowed_hosts=profile.allowed_hosts,
        scrape_urls=args.scrape or scrape_urls(profile),
        prometheus=prometheus_settings(profile, args.prometheus),
        exporter_port=exporter_port,
        db_dsn=profile_dsn(profile),
        cache_endpoints=args.cache_endpoint,
        abort_on=args.abort_on or abort_texts(profile),
        locust_args=list(args.locust_args),
    )


# Locust options that take no value: any other option loadwise does not own is taken with the
# value that follows it (a locustfile's own options included), as `--tags browse` or `--csv out`.
LOCUST_FLAGS = frozenset({
    "--autostart", "--only-summary", "--skip-log-setup", "--reset-stats", "--print-stats", "--json",
    "--csv-full-history", "--enable-rebalancing", "--list", "-l", "--show-task-ratio", "--show-task-ratio-json",
    "--class-picker", "--legacy-ui", "--modern-ui", "--web-login", "--allow-skipping", "--profile-locust",
})  # fmt: skip


# Locust options that would fight what `loadwise run` sets up itself: refused, with the option to use instead.
LOCUST_REFUSED = {
    "--master": "loadwise run starts its own master: use --workers N (local) or --expect-workers N (elsewhere)",
    "--worker": "a worker that joins a master elsewhere is `loadwise worker SCENARIO --master-host HOST`",
    "--master-host": "a worker that joins a master elsewhere is `loadwise worker SCENARIO --master-host HOST`",
    "--master-bind-host": "the master listens on --listen HOST",
    "--master-bind-port": "the master listens on --master-port PORT",
    "--run-dir": "loadwise run makes each run directory itself, under --out DIR",
    "--runs-dir": "run directories go under --out DIR",
    "--scenario": "give the scenario or locustfile as SCENARIO or -f FILE",
    "--run-tag": "tags stored in run.json are --tag KEY=VALUE",
}
# Locust options that only print something about the locustfile and exit: Locust itself answers them.
LOCUST_INSPECT = frozenset({"--list", "-l", "--show-task-ratio", "--show-task-ratio-json", "--version", "-V"})


def check_locust_args(locust_args: list[str]) -> bool:
    """Refuse the Locust options loadwise replaces (one line saying what to use); True when
    the command line only asks Locust to describe the locustfile (--list and the like)."""
    for arg in locust_args:
        flag = arg.split("=", 1)[0]
        if flag in LOCUST_REFUSED:
            raise UsageError(f"{flag}: {LOCUST_REFUSED[flag]}")
    return any(arg in LOCUST_INSPECT for arg in locust_args)


# The commands whose command line may carry Locust's own options.
PASS_THROUGH_COMMANDS = ("run", "worker")


def _option_arity(command: str) -> dict[str, int]:
    """Each option `loadwise COMMAND` defines, and how many values it takes (from a parser built
    the way `register` builds it: argparse's own record of its options)."""
    sub = Parser(prog="loadwise").add_subparsers(dest="command", parser_class=Parser)
    register(sub)
    arity: dict[str, int] = {}
    for action in sub.choices[command]._actions:
        arity |= {flag: 0 if action.nargs == 0 else 1 for flag in action.option_strings}
    return arity


def split_locust_args(argv: list[str], command: str = "run") -> tuple[list[str], list[str]]:
    """`loadwise run`'s (or `worker`'s) command line split into what loadwise parses and what goes to Locust.

    loadwise knows its own options and how many values each takes; everything else is
    Locust's, in the order given: unknown options (with the value that follows unless the
    option is a known Locust flag) and, after the locustfile, User class names.
    """
    arity = _option_arity(command)
    ours: list[str] = []
    theirs: list[str] = []
    has_locustfile = any(a in ("-f", "--locustfile") or a.startswith("--locustfile=") for a in argv)
    scenario_seen = has_locustfile
    i = 0
    while i < len(argv):
        token = argv[i]
        flag = token.split("=", 1)[0]
        if token == "--":
            theirs += argv[i + 1 :]
            break
        if flag in arity:
            count = 0 if "=" in token else arity[flag]
            ours += argv[i : i + 1 + count]
            i += 1 + count
        elif token.startswith("-") and token != "-":
            value = "=" not in token and flag not in LOCUST_FLAGS and i + 1 < len(argv) and not argv[i + 1].startswith("-")
            theirs += argv[i : i + 1 + value]
            i += 1 + value
        elif not scenario_seen:
            ours.append(token)
            scenario_seen = True
            i += 1
        else:
            theirs.append(token)  # a User class name
            i += 1
    return ours, theirs


def _workers(args: argparse.Namespace) -> int:
    processes = getattr(args, "processes", None)
    if processes is None:
        return args.workers
    if args.workers and args.workers != processes:
        raise UsageError("--processes and --workers say different things: give one")
    return processes


def _report(result: Any, as_json: bool, exit_code_on_error: int = EXIT_OK) -> int:
    from loadwise.analysis.rundir import STATUS_COMPLETED
    from loadwise.cli.console import endpoint_table

    if as_json:
        print(json.dumps({"run_dir": str(result.run_dir.path), "status": result.status, "reason": result.reason,
                          **({"aborted": result.aborted} if result.aborted else {}), **result.summary}, indent=2))
    else:
        print(endpoint_table(result.summary))
        _print_open_model(result)
        _print_checks(result)
        _print_lost_workers(result)
        reason = f" ({result.reason})" if result.reason else ""
        print(f"status: {result.status}{reason}")
        print(result.run_dir.path)
    if result.status != STATUS_COMPLETED:
        return EXIT_FAILED
    if result.aborted:
        print(f"loadwise run: {result.reason}: exit code {EXIT_FAILED}", file=sys.stderr)
        return EXIT_FAILED
    failures = int((result.summary.get("overall") or {}).get("failures") or 0)
    if failures and exit_code_on_error != EXIT_OK:
        print(f"{failures} request(s) failed: exit code {exit_code_on_error} (--exit-code-on-error 0 ignores failures)",
              file=sys.stderr)  # fmt: skip
        return exit_code_on_error
    return EXIT_OK


def _print_lost_workers(result: Any) -> None:
    """One line per worker the master lost during the run (its reported requests are in the table)."""
    try:
        lost = result.run_dir.read_info().lost_workers
    except LoadwiseError:
        return
    for worker in lost:
        print(f"worker lost: {worker['id']} at {worker['lost_at']} (no heartbeat); its {worker['requests']} requests "
              f"up to its last report ({worker['last_report_at'] or 'none'}) are in the run, what it sent after is not")


def _print_checks(result: Any) -> None:
    """loadwise.check()'s counts: one line for the run, one per check that failed at all."""
    try:
        checks = result.run_dir.read_info().checks
    except LoadwiseError:
        return
    passes, fails = sum(c["passes"] for c in checks), sum(c["fails"] for c in checks)
    if passes + fails == 0:
        return
    print(f"checks: {passes / (passes + fails):.2%} passed ({passes} of {passes + fails})")
    for c in sorted(checks, key=lambda c: -c["fails"]):
        if c["fails"]:
            print(f"  {c['method']} {c['name']}: {c['check']!r} failed {c['fails']} of {c['passes'] + c['fails']}")


def _print_open_model(result: Any) -> None:
    """Under a rate shape (each rate scenario of a run of several): the iteration counts, and a loud
    note when the generator was the limit."""
    try:
        info = result.run_dir.read_info()
    except LoadwiseError:
        info = None
    scenarios = result.summary.get("scenarios") or []
    if scenarios:
        records = {r.get("name"): r for r in (info.scenarios if info else [])}
        parts = [(f" ({s['name']})", s.get("overall") or {}, (records.get(s["name"], {}).get("open_model") or {}).get("generator"))
                 for s in scenarios]  # fmt: skip
    else:
        parts = [("", result.summary.get("overall") or {}, (info.open_model.get("generator") if info else None))]
    for label, stats, generator in parts:
        if "iterations_scheduled" not in stats:
            continue
        print(f"iterations{label}: {stats['iterations_scheduled']} scheduled, {stats['iterations_started']} started "
              f"({stats['iterations_late']} late), {stats['dropped_iterations']} dropped; its latencies are from "
              f"each request's intended start (service p95 {stats.get('service_p95_ms')} ms)")  # fmt: skip
        if (generator or {}).get("saturated"):
            print(f"warning{label}: the load generator was saturated ({generator.get('evidence')}): lateness and dropped "
                  "iterations may be the generator's limit, not the target's; add --workers or lower --rate", file=sys.stderr)  # fmt: skip


def _scenario(args: argparse.Namespace) -> str:
    """SCENARIO or -f LOCUSTFILE (one of them, once)."""
    if args.scenario and args.locustfile and args.scenario != args.locustfile:
        raise UsageError(f"two locustfiles: {args.scenario!r} and -f {args.locustfile!r}")
    scenario = args.locustfile or args.scenario
    if not scenario:
        raise UsageError("give SCENARIO (browse, checkout, smoke or a locustfile path) or -f LOCUSTFILE")
    return scenario


def cmd_run(args: argparse.Namespace) -> int:
    from loadwise.config import load_profile
    from loadwise.run import handoff
    from loadwise.run.live import LiveDisplay
    from loadwise.run.runner import execute, validate

    profile = load_profile(args.profile, args.config)
    host = args.host or profile.host  # None: the locustfile's User classes name their host (checked in Locust)
    scenario = _scenario(args)
    if check_locust_args(args.locust_args):
        return _inspect(scenario, args.locust_args)
    spec = _spec(args, host, profile, scenario)
    spec.expect_workers, spec.listen, spec.master_port = args.expect_workers, args.listen, args.master_port
    validate(spec)
    if args.web_ui:
        return _web_ui(spec, args)
    if args.hold:
        handoff.clear(args.out)
    result = execute(spec, LiveDisplay())
    if not args.no_report:
        _render(result.run_dir.path, args.html)
    code = _report(result, args.json, args.exit_code_on_error)
    if args.hold:
        handoff.hold(args.out, handoff.Done(result.run_dir.path.name, result.status, code), args.hold)
    return code


def _inspect(scenario: str, locust_args: list[str]) -> int:
    """`--list`, `--show-task-ratio` ...: Locust answers about the locustfile, and no run starts."""
    import subprocess

    from loadwise.run.command import ENTRY
    from loadwise.run.runner import check_scenario

    check_scenario(scenario)
    return subprocess.run([sys.executable, "-m", "locust", "-f", str(ENTRY), "--scenario", scenario, *locust_args]).returncode


def _web_ui(spec: Any, args: argparse.Namespace) -> int:
    from loadwise.run.live import LiveDisplay
    from loadwise.run.command import web_ui_url
    from loadwise.run.runner import execute_web_ui

    if spec.scrape_urls or args.hold or args.expect_workers:
        raise UsageError("--web-ui runs one test after another from the browser: --scrape, --hold and --expect-workers "
                         "are for headless runs (use --prometheus to collect server metrics)")  # fmt: skip
    spec.web_ui = True
    print(f"web UI: {web_ui_url(spec)}  (each test started there gets its own run directory under {spec.runs_dir}/; "
          "Ctrl-C ends the session)", file=sys.stderr, flush=True)  # fmt: skip
    results = execute_web_ui(spec, LiveDisplay())
    if not results:
        print("no test was started from the web UI: no run directory written", file=sys.stderr)
        return EXIT_OK
    codes = []
    for result in results:
        if not args.no_report:
            _render(result.run_dir.path, None)
        codes.append(_report(result, args.json, args.exit_code_on_error))
    return max(codes)


def _render(run_path: Path, copy_to: Path | None) -> None:
    """report.html in the run directory (and at `copy_to`); a report that cannot be built is a
    note, never a failed run: the run directory holds everything `loadwise report` needs."""
    import shutil

    from loadwise.reports import data, render

    try:
        path = render.write(data.load(str(run_path)))
        if copy_to is not None:
            shutil.copyfile(path, copy_to)
        print(f"report: {copy_to or path}", file=sys.stderr)
    except (LoadwiseError, OSError) as exc:
        print(f"note: no report rendered ({exc}); `loadwise report {run_path}` tries again", file=sys.stderr)


def _demo_capacity(run_dir: Any) -> None:
    """The capacity answer of the demo's step run, stored for the report and said in two lines."""
    from loadwise.analysis.steps import STEP_SHAPES
    from loadwise.capacity.models import CapacityError
    from loadwise.capacity.settings import CapacitySettings
    from loadwise.capacity.summary import analyze

    if run_dir.read_info().shape not in STEP_SHAPES:
        return
    settings = CapacitySettings()
    try:
        plan = analyze(run_dir.path, settings)
    except (CapacityError, LoadwiseError) as exc:
        print(f"demo: no capacity answer ({exc})", file=sys.stderr)
        return
    store_results(run_dir, capacity=plan.to_dict() | {"settings": vars(settings)})
    model = plan.model
    print(f"demo: capacity model {model['model']} (R² {model['r_squared']:.3f}), peak {model.get('peak_throughput') or 0:.0f} req/s",
          file=sys.stderr)  # fmt: skip
    k = plan.offered_knee
    if k and k.after_step:
        print(f"demo: knee between step {k.after_step} ({k.offered_rps[0]:.0f} req/s offered, {k.achieved_rps[0]:.0f} "
              f"achieved) and step {k.step} ({k.reason})", file=sys.stderr)  # fmt: skip
    elif plan.concurrency_source == "littles_law_service":
        print("demo: no knee: " + ("already the first step fell behind (lower --rate)" if k else "every step kept up (raise --rate)"),
              file=sys.stderr)  # fmt: skip


def cmd_worker(args: argparse.Namespace) -> int:
    """Become a Locust worker (exec: signals reach Locust directly, as in a pod)."""
    from loadwise.run.command import worker_args
    from loadwise.run.runner import check_scenario

    scenario = _scenario(args)
    check_scenario(scenario)
    check_locust_args(args.locust_args)
    if not 0 < args.master_port < 65536:
        raise UsageError(f"--master-port {args.master_port} is not a TCP port")
    argv = worker_args(scenario, args.master_host, args.master_port, args.interval, args.cache_endpoint, args.shape,
                       args.locust_args)  # fmt: skip
    if args.scenarios:
        from loadwise.scenarios.plan import read_scenarios

        read_scenarios(Path(args.scenarios))  # a bad plan is this command's one-line error, not the worker's
        argv += ["--scenarios", args.scenarios]
    os.execv(argv[0], argv)
    return EXIT_FAILED  # not reached


def cmd_demo(args: argparse.Namespace) -> int:
    from loadwise.config import Profile
    from loadwise.reports import data, render
    from loadwise.run.demo_target import DemoTarget
    from loadwise.run.live import LiveDisplay
    from loadwise.run.runner import execute, validate

    target = DemoTarget(workers=args.target_workers, rows=args.rows)
    if not args.scrape:
        args.scrape = [f"{target.url}/metrics"]
    if args.shape not in RATE_SHAPE_NAMES:
        args.rate = None  # the demo's default rate is for its rate shapes
    elif args.shape == "step-rate" and not any(p.startswith("steps=") for p in args.shape_param):
        args.shape_param.append(f"steps={DEMO_STEPS}")
    spec = _spec(args, target.url, Profile(), "browse")
    validate(spec)
    print(f"demo: starting the demo shop on {target.url} ...", file=sys.stderr, flush=True)
    with target:
        peak = f"{args.rate:g} iterations/s" if args.shape in RATE_SHAPE_NAMES else f"{args.users} users"
        print(f"demo: running browse, {args.shape} shape up to {peak} for {spec.duration_s:g}s", file=sys.stderr, flush=True)
        result = execute(spec, LiveDisplay())
    _demo_capacity(result.run_dir)
    report_path = render.write(data.load(str(result.run_dir.path)))
    print(f"demo: report written to {report_path}", file=sys.stderr)
    return _report(result, args.json)
