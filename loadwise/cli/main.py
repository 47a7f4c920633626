"""The `loadwise` command line. I/O lives here; the work is done by the modules it calls.

Exit codes: 0 ok; 1 the run failed or was interrupted; 2 bad arguments, missing or
malformed files (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

from loadwise.analysis.histogram import HistogramError
from loadwise.analysis.history import HistoryError
from loadwise.analysis.rundir import RunDirError
from loadwise.analysis.thresholds import ThresholdError
from loadwise.capacity.models import CapacityError
from loadwise.cli.advise import cmd_advise
from loadwise.cli.commands import (
    EXIT_FAILED,
    EXIT_USAGE,
    UsageError,
    cmd_capacity,
    cmd_compare,
    cmd_demo,
    cmd_gate,
    cmd_history,
    cmd_report,
    cmd_k8s,
    cmd_run,
    cmd_worker,
)
from loadwise.config import ConfigError
from loadwise.durations import parse_duration
from loadwise.autoscaling.cluster import ClusterError
from loadwise.analysis.cache.advise import CacheAdvisorError
from loadwise.k8s.follow import K8sError
from loadwise.analysis.indexes.postgres import DbAdvisorError
from loadwise.analysis.indexes.sqlite import SqliteAdvisorError
from loadwise.run.runner import RunError
from loadwise.scenarios import SCENARIOS
from loadwise.scenarios.shapes import SHAPES, ShapeError, shape_parameters

class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of a usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _duration(text: str) -> float:
    seconds = _duration_or_zero(text)
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
    parser.add_argument("--cache-endpoint", action="append", default=[], metavar="NAME",
                        help="sample request keys of this endpoint (e.g. '/products/[id]') for `advise cache`; repeatable")


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
    remote = run.add_argument_group("workers on other machines (the Helm chart's master Job uses these)")
    remote.add_argument("--expect-workers", type=int, default=0, metavar="N",
                        help="wait for N workers started elsewhere with `loadwise worker` (up to 5 minutes)")
    remote.add_argument("--listen", default="127.0.0.1", metavar="HOST",
                        help="address the master port and the exporter listen on (default 127.0.0.1; 0.0.0.0 in a pod)")
    remote.add_argument("--master-port", type=int, metavar="PORT", help="port workers connect to (default 5557 with --expect-workers)")
    remote.add_argument("--hold", type=_duration, metavar="DURATION",
                        help="after the run, stay alive until `loadwise k8s fetch` copies the run directory out, at most DURATION")

    worker = sub.add_parser(
        "worker", help="a Locust worker that joins a master elsewhere (`loadwise run --expect-workers`)",
        description="Run one Locust worker with the loadwise recorder for SCENARIO and connect it to a master. "
        "The master merges its histograms; the worker writes nothing itself.",
        epilog="example: loadwise worker browse --master-host loadwise-master --master-port 5557",
    )  # fmt: skip
    worker.add_argument("scenario", metavar="SCENARIO", help=f"built-in ({', '.join(SCENARIOS)}) or the path of a locustfile; the master's")
    worker.add_argument("--master-host", required=True, help="the master's host name or address")
    worker.add_argument("--master-port", type=int, default=5557, help="the master's port (default 5557)")
    worker.add_argument("--interval", type=float, default=5.0, help="recorder interval in seconds: the master's (default 5)")
    worker.add_argument("--cache-endpoint", action="append", default=[], metavar="NAME", help="as given to the master; repeatable")

    k8s = sub.add_parser(
        "k8s", help="follow a run on Kubernetes and fetch its run directory (the Helm chart's release)",
        description="With the kubeconfig (or the in-cluster account): `follow RELEASE` prints the master's progress "
        "(users, req/s, p95 from its log) until the run ends and reports a failed or evicted master; `fetch RELEASE` "
        "copies the held run directory out of the master pod (tar over exec, as kubectl cp does) into --out, "
        "then lets the master exit.",
        epilog="example:\n  helm install shop-load deploy/helm/loadwise -f deploy/helm/loadwise/values-staging.yaml\n"
        "  loadwise k8s follow shop-load && loadwise k8s fetch shop-load --out runs/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    k8s.add_argument("action", choices=["follow", "fetch"], help="follow the run, or fetch its run directory")
    k8s.add_argument("release", metavar="RELEASE", help="the Helm release name")
    k8s.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    k8s.add_argument("--context", help="kubeconfig context (default: the current one)")
    k8s.add_argument("--out", type=Path, default=Path("runs"), help="with fetch: where the run directory goes (default runs/)")
    k8s.add_argument("--timeout", type=_duration, default=_duration("2h"), help="give up following after this long (default 2h)")

    demo = sub.add_parser(
        "demo",
        help="run the demo end to end (target, step load, report)",
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
    cap.add_argument("--target-rps", type=_positive, help="load to plan replicas for (requests/s)")
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
        "(block bootstrap over intervals, 99% CI, minimum effect) and none against --history "
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
    gate.add_argument("--min-delta", type=_ms, default=2.0, help="smallest latency change called a regression (default 2ms)")
    gate.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    gate.add_argument("--force", action="store_true", help="compare runs even when their scenario or shape differ")
    gate.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML (one testcase per check)")
    gate.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown summary (PR comment, CI step summary)")
    _add_verdict_options(gate)

    advise = sub.add_parser("advise", help="recommendations with their evidence: advise db | hpa | cache | alerts")
    advisors = advise.add_subparsers(dest="advisor", metavar="ADVISOR", parser_class=Parser, required=True)
    db = advisors.add_parser(
        "db", help="indexes to create (and drop) from pg_stat_statements, proven with HypoPG",
        description="Rank the statements PostgreSQL spent most time on (pg_stat_statements), find the columns they "
        "filter, join and sort on (PostgreSQL's own grammar, pglast), and measure candidate indexes with HypoPG "
        "hypothetical indexes on the planner's generic plans. Read-only: only EXPLAIN and HypoPG, in a "
        "transaction that is rolled back. Needs the pg_stat_statements and hypopg extensions.",
    )  # fmt: skip
    db.add_argument("run", metavar="RUN", nargs="?", help="run directory whose summary.json and report get the advice")
    source = db.add_mutually_exclusive_group()
    source.add_argument("--dsn", help="postgresql:// URL (prefer --dsn-env: a DSN on a command line is visible to others)")
    source.add_argument("--dsn-env", metavar="NAME", help="environment variable holding the DSN (default: the profile's db_dsn_env)")
    source.add_argument("--sqlite", type=Path, metavar="FILE", help="a SQLite database instead (with --statements)")
    db.add_argument("--statements", type=Path, metavar="LOG", help="with --sqlite: statement log (JSON lines of sql and ms; the demo's --log-statements)")
    db.add_argument("--top", type=int, default=50, help="statements to consider, by total time (default 50)")
    db.add_argument("--min-cut", type=_fraction, default=0.5, help="keep an index that cuts a statement's cost by at least this (default 50%%)")
    db.add_argument("--max-indexes", type=int, default=10, help="at most this many recommendations (default 10)")
    db.add_argument("--profile", help="profile in loadwise.toml (db_dsn_env)")
    db.add_argument("--config", type=Path, help="configuration file (default ./loadwise.toml)")
    db.add_argument("--json", action="store_true", help="print one JSON object: indexes, drop, seq_scans")

    hpa = advisors.add_parser(
        "hpa", help="HorizontalPodAutoscaler settings proven on a simulator of the HPA controller",
        description="Replay a traffic trace through a simulator of the Kubernetes HPA controller with the per-pod "
        "capacity and CPU per request this run measured, search targets, minReplicas and behaviors, and keep the "
        "cheapest setting whose SLO-violation time stays within the budget. Prints it beside the current settings "
        "(or the 80% CPU default) and writes a validated autoscaling/v2 manifest.",
    )  # fmt: skip
    hpa.add_argument("run", metavar="RUN", help="run directory (its capacity analysis and server CPU metrics)")
    hpa.add_argument("--trace", default="spike", help="diurnal, spike, ramp, run (this run's own load), or FILE.csv (timestamp,rps)")
    hpa.add_argument("--peak-rps", type=_positive, help="peak of the synthetic traces (default: 10 pods at capacity)")
    hpa.add_argument("--capacity-rps", type=_positive, help="SLO-bound requests/s per pod (default: from `loadwise capacity`)")
    hpa.add_argument("--cpu-per-request", type=_positive, help="CPU seconds per request (default: measured by the collector)")
    hpa.add_argument("--cpu-request", type=_positive, default=0.5, help="CPU cores each pod requests (default 0.5)")
    hpa.add_argument("--startup", type=_duration_or_zero, default=30.0, help="pod start-up time before serving (default 30s)")
    hpa.add_argument("--budget", type=_fraction, default=0.001, help="share of the trace the SLO may be broken (default 0.1%%)")
    hpa.add_argument("--current-min", type=int, default=1, help="current minReplicas (default 1; or read from the cluster)")
    hpa.add_argument("--current-max", type=int, default=20, help="current maxReplicas (default 20)")
    hpa.add_argument("--current-target", type=_fraction, default=0.8, help="current CPU utilization target (default 80%%)")
    hpa.add_argument("--namespace", help="read the current HPA and Deployment from this namespace (with --deployment)")
    hpa.add_argument("--deployment", help="the Deployment the HPA scales (also the manifest's name)")
    hpa.add_argument("--api-url", help="Kubernetes API URL (default: kubeconfig or in-cluster config)")
    hpa.add_argument("-o", "--output", type=Path, help="write the recommended HPA manifest here (YAML)")
    hpa.add_argument("--apply", action="store_true", help="send the recommended HPA to the cluster as a server-side dry run")
    hpa.add_argument("--yes", action="store_true", help="with --apply: after the dry run succeeds, apply it for real")
    hpa.add_argument("--json", action="store_true", help="one object with recommended and current (replica_hours, "
                     "slo_violation_seconds, peak_replicas, manifest)")

    cache = advisors.add_parser(
        "cache", help="cache size and TTL from miss-ratio curves, and a live Redis's figures",
        description="Build the LRU miss-ratio curve of a key trace (exact Mattson stack distances, or SHARDS "
        "sampling for long traces) and recommend a size (the knee, or --target-hit-ratio), a TTL range from "
        "reuse times, and the expected effect; with --redis, report its hit ratio, evictions and memory and "
        "advise maxmemory and the eviction policy.",
    )  # fmt: skip
    cache.add_argument("run", metavar="RUN", nargs="?", help="run directory with a key sample (run with --cache-endpoint)")
    cache.add_argument("--trace", type=Path, metavar="FILE.csv", help="timestamp,key[,size] from any access log")
    cache.add_argument("--redis", metavar="URL", help="redis://HOST:PORT to read INFO and CONFIG from")
    cache.add_argument("--target-hit-ratio", type=_fraction, help="size for this hit ratio instead of the knee")
    cache.add_argument("--max-staleness", type=_duration_or_zero, default=300.0, help="longest an entry may be stale (default 300s)")
    cache.add_argument("--hit-latency", type=_ms, default=1.0, help="latency of a cache hit (default 1ms)")
    cache.add_argument("--json", action="store_true", help="one object: mrc (size, hit_ratio points), recommended, redis")

    alerts = advisors.add_parser(
        "alerts", help="Prometheus alert rules from the run's SLO-bound capacity and its SLOs",
        description="Write a Prometheus rule file: request rate per pod above a share of the SLO-bound capacity this "
        "step run measured (for 5m), and each latency (p50/p90/p95/p99) and error-rate SLO broken (for 10m), on "
        "http_requests_total and http_request_duration_seconds. Each rule's annotations carry the numbers it used. "
        "Example: loadwise advise alerts RUN --slo 'p95<300ms' --slo 'error_rate<1%' --selector '{job=\"shop\"}' -o alerts.yml",
    )  # fmt: skip
    alerts.add_argument("run", metavar="RUN", help="run directory (a step run for the capacity rule)")
    alerts.add_argument("--slo", action="append", default=[], metavar="EXPR",
                        help="SLO, e.g. 'p95<300ms', 'error_rate<1%%'; repeatable (added to the profile's slos/thresholds)")
    alerts.add_argument("--selector", metavar="MATCHERS", help="label matchers for every series, e.g. '{job=\"shop\"}' "
                        "(default: the profile's prometheus job, else none)")
    alerts.add_argument("--pod-label", default="pod", metavar="LABEL", help="label that tells the replicas apart (default pod)")
    alerts.add_argument("--capacity-fraction", type=_fraction, default=0.8, metavar="SHARE",
                        help="warn when a pod serves this share of its SLO-bound capacity (default 80%%)")
    alerts.add_argument("--replicas-in-run", type=int, metavar="N", help="instances that served the run (default: as given to "
                        "`loadwise capacity`, else 1)")
    alerts.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the rule file here (default: stdout)")
    alerts.add_argument("--profile", help="profile in loadwise.toml (slos, thresholds, prometheus job)")
    alerts.add_argument("--config", type=Path, help="configuration file (default ./loadwise.toml)")
    alerts.add_argument("--json", action="store_true", help="one object: rules, made, notes, capacity")

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


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive, finite number")
    return value


def _ms(text: str) -> float:
    try:
        return parse_duration(text if text[-1:].isalpha() else f"{text}ms") * 1000.0
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


COMMANDS = {"run": cmd_run, "demo": cmd_demo, "report": cmd_report, "compare": cmd_compare, "capacity": cmd_capacity,
            "gate": cmd_gate, "history": cmd_history, "advise": cmd_advise, "worker": cmd_worker, "k8s": cmd_k8s}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except (UsageError, ConfigError, ShapeError, RunError, RunDirError, ThresholdError, CapacityError, HistoryError,
            DbAdvisorError, SqliteAdvisorError, ClusterError, CacheAdvisorError, HistogramError, K8sError) as exc:  # fmt: skip
        print(f"loadwise {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # an output path that cannot be written, a file that cannot be read
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"loadwise {args.command}: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"loadwise {args.command}: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # never a traceback: most likely a malformed input we did not foresee
        if os.environ.get("LOADWISE_DEBUG"):
            raise
        print(f"loadwise {args.command}: error: {type(exc).__name__}: {_one_line(exc)} "
              "(malformed input? LOADWISE_DEBUG=1 shows the traceback)", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else text[:397] + "..."


def run_main() -> Any:
    sys.exit(main())
