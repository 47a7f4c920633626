"""`loadwise advise db | hpa | cache | alerts`: each advisor's inputs, its pure analysis, and its
recommendation printed, stored in the run's summary and shown in its report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadwise.analysis.cache.settings import CacheSettings
from loadwise.analysis.indexes.settings import IndexAdvisorSettings
from loadwise.autoscaling.settings import HpaSettings
from loadwise.capacity.settings import AlertSettings
from loadwise.cli.args import Parser, add_settings, settings_from
from loadwise.cli.common import add_profile_options, store_results
from loadwise.cli.k8s import add_cluster_options
from loadwise.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from loadwise.config import Profile


def register(sub: Any) -> None:
    advise = sub.add_parser("advise", help="recommendations with their evidence: advise db | hpa | cache | alerts")
    advisors = advise.add_subparsers(dest="advisor", metavar="ADVISOR", parser_class=Parser, required=True)
    advise.set_defaults(handler=cmd_advise)
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
    given = db.add_mutually_exclusive_group()
    given.add_argument("--pg-log", type=Path, metavar="FILE", help="read the statements with their constants from a PostgreSQL "
                       "log (log_min_duration_statement lines with their DETAIL: Parameters, auto_explain's Query Text) "
                       "instead of pg_stat_statements: ranges are then planned with their real values")
    given.add_argument("--sql", type=Path, metavar="FILE", help="plan the statements of this file (;-separated, with constants), "
                       "each weighed the same")  # fmt: skip
    add_settings(db, IndexAdvisorSettings)
    db.add_argument("--allow-superuser", action="store_true",
                    help="advise under a superuser DSN anyway. Refused by default: planning runs IMMUTABLE functions the "
                    "statements call, and a superuser's functions can write despite the read-only transaction "
                    "(e.g. through dblink); use a role with pg_read_all_stats and SELECT instead (docs/db.md)")  # fmt: skip
    add_profile_options(db, "db_dsn_env")
    db.add_argument("--json", action="store_true", help="print one JSON object: indexes, drop, seq_scans")

    hpa = advisors.add_parser(
        "hpa", help="HorizontalPodAutoscaler settings proven on a simulator of the HPA controller",
        description="Replay a traffic trace through a simulator of the Kubernetes HPA controller with the per-pod "
        "capacity and CPU per request this run measured, search targets, minReplicas and behaviors, and keep the "
        "cheapest setting whose SLO-violation time stays within the budget. Prints it beside the current settings "
        "(or the 80% CPU default) and writes a validated autoscaling/v2 manifest.",
    )  # fmt: skip
    hpa.add_argument("run", metavar="RUN", help="run directory (its capacity analysis and server CPU metrics)")
    add_settings(hpa, HpaSettings)
    add_cluster_options(hpa)
    hpa.add_argument("--deployment", help="the Deployment the HPA scales: its current HPA and CPU request are read from the "
                     "cluster (kubeconfig, -n, --context), and it names the manifest")
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
    add_settings(cache, CacheSettings)
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
    add_settings(alerts, AlertSettings)
    alerts.add_argument("--replicas-in-run", type=int, metavar="N", help="instances that served the run (default: as given to "
                        "`loadwise capacity`, else 1)")
    alerts.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the rule file here (default: stdout)")
    add_profile_options(alerts, "slos, thresholds, prometheus job")
    alerts.add_argument("--json", action="store_true", help="one object: rules, made, notes, capacity")


def _dsn(args: argparse.Namespace) -> str:
    import os

    from loadwise.config import load_profile

    if args.dsn:
        return args.dsn
    name = args.dsn_env or load_profile(args.profile, args.config).settings.get("db_dsn_env")
    if not name:
        raise UsageError("no database: give --dsn-env NAME (or --dsn), or db_dsn_env in the profile")
    value = os.environ.get(str(name))
    if not value:
        raise UsageError(f"environment variable {name} is not set")
    return value


def cmd_advise(args: argparse.Namespace) -> int:
    from loadwise.analysis.rundir import DB_STATEMENTS_JSON, RunDir, json_safe

    if args.advisor == "hpa":
        return cmd_advise_hpa(args)
    if args.advisor == "cache":
        return cmd_advise_cache(args)
    if args.advisor == "alerts":
        return cmd_advise_alerts(args)
    from loadwise.analysis.indexes import postgres as pgadvisor

    run_dir = RunDir(args.run) if args.run else None
    if run_dir is not None:
        run_dir.read_info()  # a bad RUN fails before any database work
    settings = settings_from(args, IndexAdvisorSettings)
    if args.sqlite:
        from loadwise.analysis.indexes import sqlite as sqliteadvisor
        if not args.statements:
            raise UsageError("--sqlite needs --statements LOG (the demo writes one with --log-statements)")
        result = sqliteadvisor.advise(args.sqlite, args.statements, settings)
    else:
        window, where = None, None
        if args.pg_log or args.sql:
            from loadwise.analysis.indexes import sources

            path = args.pg_log or args.sql
            if not path.is_file():
                raise UsageError(f"{path}: no such file")
            with path.open(encoding="utf-8", errors="replace", newline="") as lines:  # newline="": csvlog's quoted newlines
                window = (sources.from_log(lines) if args.pg_log else sources.from_file(lines))[: settings.top]
            where = f"{'the PostgreSQL log' if args.pg_log else 'the statements file'} {path.name}, with their constants"
            if not window:
                raise UsageError(f"{path}: no statement found (is log_min_duration_statement set?)" if args.pg_log
                                 else f"{path}: no statement in it")  # fmt: skip
        elif run_dir is not None and run_dir.has_statements():
            path = run_dir.file(DB_STATEMENTS_JSON)
            window, problem = pgadvisor.recorded_window(run_dir.read_json(DB_STATEMENTS_JSON), str(path), settings.top)
            if problem:
                print(f"note: {problem}", file=sys.stderr)
        conn = pgadvisor.connect(_dsn(args))
        try:
            result = pgadvisor.advise(conn, settings, window, allow_superuser=args.allow_superuser)
        finally:
            conn.close()
        result.window = where or ("the run (pg_stat_statements at its start and end)" if window is not None
                                  else "since the statistics were reset")
    if run_dir is not None:
        store_results(run_dir, database=json_safe(result.to_dict()))
    for skipped in result.skipped:
        query = " ".join(skipped["query"].split())
        print(f"note: statement not planned ({skipped['reason']}): {query[:100]}", file=sys.stderr)
    if args.json:
        print(json.dumps(json_safe(result.to_dict()), indent=2))
        return EXIT_OK
    if not result.indexes:
        print(f"no index would cut the cost of the top {result.statements_considered} statements by {settings.min_cut:.0%}")
    for r in result.indexes:
        size = "size unknown" if r.size_bytes is None else f"size {r.size_bytes / 1e6:.1f} MB"
        print(f"{r.create_statement}\n  {result.cost_unit or 'planner cost'} {r.cost_before:.0f} -> {r.cost_after:.0f}, {size}, helps:")
        for st in r.statements:
            source = "" if st.get("source", "pg_stat_statements") == "pg_stat_statements" else f" [{st['source']}]"
            print(f"    {st['calls']} calls, {st['total_ms']:.0f} ms total, mean {st['mean_ms']:.2f} ms{source}: {st['query'][:100]}")
        for note in r.notes:
            print(f"  note: {note}")
    for d in result.drop:
        age = f" (statistics {d['stats_age']} old)" if d.get("stats_age") else ""
        print(f"{d['drop_statement'] or '-- ' + d['name'] + ':'}  -- {d['reason']}{age}")
    for scan in result.seq_scans[:5]:
        print(f"table {scan['table']}: {scan['seq_scans']} sequential scans read {scan['rows_read']} rows ({scan['rows_per_scan']} per scan)")
    return EXIT_OK


def cmd_advise_hpa(args: argparse.Namespace) -> int:
    import yaml

    from loadwise.analysis.rundir import RunDir, json_safe
    from loadwise.autoscaling.advise import advise
    from loadwise.autoscaling.hpa import KUBERNETES_SEMANTICS
    from loadwise.k8s import hpa as cluster

    if (args.namespace or args.context) and not args.deployment:
        raise UsageError("--namespace and --context read the cluster: name the --deployment the HPA scales")
    if args.yes and not args.apply:
        raise UsageError("--yes goes with --apply")
    if args.apply and not args.deployment:
        raise UsageError("--apply needs --deployment (and the cluster's -n/--namespace, --context if not the kubeconfig's)")
    run_dir = RunDir(args.run)
    run_dir.read_info()
    summary = run_dir.read_summary() if run_dir.has_summary() else {}
    settings = settings_from(args, HpaSettings)
    state = cluster.read(args.deployment, args.namespace, args.context) if args.deployment else None
    advice = advise(summary, run_dir.read_intervals(), run_dir.read_metrics(), settings, state, args.deployment,
                    args.namespace, run=args.run)  # fmt: skip
    if args.output:
        args.output.write_text(advice.manifests["recommended"], encoding="utf-8")
    applied: list[str] = []
    if args.apply:
        applied = cluster.apply_hpa(yaml.safe_load(advice.manifests["recommended"]), args.namespace, args.context,
                                    for_real=args.yes)  # fmt: skip
        if not args.yes:
            applied.append("not applied: the dry run passed; add --yes to apply it")
    store_results(run_dir, hpa=advice.report_block())
    out = advice.to_dict() | {"applied": applied}
    if args.json:
        print(json.dumps(json_safe(out), indent=2))
        return EXIT_OK
    trace, resources = advice.trace, advice.resources
    print(f"trace {trace.name}: peak {trace.peak_rps:.0f} req/s over {trace.duration_s / 3600:.1f} h; per pod "
          f"{advice.capacity_rps:.1f} req/s (see the first note), {advice.cpu_per_request * 1000:.2f} ms CPU per request, "
          f"{advice.cpu_request:g} cores requested")  # fmt: skip
    for key in ("recommended", "current"):
        e = out[key]
        print(f"{key:<12} target {e['target']:.0%} min {e['min_replicas']} max {e['max_replicas']} ({e['behavior']}): "
              f"{e['replica_hours']:.1f} replica-hours, SLO broken {e['slo_violation_seconds']:.0f} s, peak {e['peak_replicas']} replicas")  # fmt: skip
    for note in advice.recommendation.notes:
        print(f"note: {note}")
    memory = "no memory measured" if resources.memory_bytes is None else f"memory {resources.memory_bytes // 2**20} MiB (request = limit)"
    print(f"resources: CPU request {resources.cpu_request * 1000:.0f}m (the CPU of one pod at its SLO capacity), {memory}; "
          f"simulated with Kubernetes {KUBERNETES_SEMANTICS} HPA semantics")  # fmt: skip
    for line in applied:
        print(line)
    print(advice.manifests["recommended"], end="")
    print("---")
    print(advice.resources_patch, end="")
    return EXIT_OK


def _miss_latency(run_dir: Any, endpoints: list[str]) -> float | None:
    """The mean latency of the run's cacheable endpoint: what a miss costs today."""
    summary = run_dir.read_summary()
    means = [e["mean_ms"] for e in summary.get("endpoints", []) if e.get("name") in endpoints]
    return float(means[0]) if means and means[0] is not None else None


def cmd_advise_cache(args: argparse.Namespace) -> int:
    from loadwise.analysis.cache import advise as cacheadvisor
    from loadwise.analysis.cache import redis as cache_redis
    from loadwise.analysis.rundir import KEYS_CSV, RunDir, json_safe

    if not (args.run or args.trace or args.redis):
        raise UsageError("give RUN, --trace FILE.csv or --redis URL")
    settings = settings_from(args, CacheSettings)
    advice, live = None, None
    run_dir = RunDir(args.run) if args.run else None
    if args.trace:
        advice = cacheadvisor.analyze(cacheadvisor.read_trace(args.trace), settings)
    elif run_dir is not None:
        info = run_dir.read_info()
        if not info.key_sample:
            raise UsageError(f"{args.run}: no key sample: run with --cache-endpoint NAME (e.g. '/products/[id]')")
        rate = float(info.key_sample.get("rate", 1.0))
        if not 0 < rate <= 1:
            raise UsageError(f"{args.run}: run.json key_sample.rate {rate!r} must be in (0, 1]")
        advice = cacheadvisor.analyze(cacheadvisor.read_trace(run_dir.file(KEYS_CSV)), settings,
                                      _miss_latency(run_dir, info.key_sample["endpoints"]), rate)  # fmt: skip
    if args.redis:
        live = cache_redis.redis_report(args.redis, advice.recommended.entries if advice else None)
    out = (advice.to_dict() if advice else {}) | ({"redis": live.to_dict()} if live else {})
    if run_dir is not None and advice is not None:
        store_results(run_dir, cache=out)
    if args.json:
        print(json.dumps(json_safe(out), indent=2))
        return EXIT_OK
    if advice is not None:
        r = advice.recommended
        print(f"{advice.requests} requests, {advice.distinct_keys} distinct keys ({advice.method} curve"
              f"{'' if advice.sample_rate == 1 else ', keys sampled at ' + format(advice.sample_rate, '.3g')}); "
              f"one-hit wonders {advice.one_hit_wonder_ratio:.0%}")  # fmt: skip
        size = f"{r.entries} entries" + (f" (~{r.bytes / 1e6:.1f} MB)" if r.bytes else "")
        print(f"recommended: {size} for a {r.expected_hit_ratio:.0%} hit ratio ({r.chosen_by}), "
              f"TTL {r.ttl_s[0]:g}-{r.ttl_s[1]:g} s")  # fmt: skip
        effect = advice.expected_effect
        line = f"expected: backend {effect['backend_requests_per_s']:.1f} of {effect['requests_per_s']:.1f} req/s"
        if "mean_latency_ms" in effect:
            line += f", mean latency {effect['miss_latency_ms']:.1f} -> {effect['mean_latency_ms']:.1f} ms"
        print(line)
        for note in advice.notes:
            print(f"note: {note}")
    if live is not None:
        ratio = "-" if live.hit_ratio is None else f"{live.hit_ratio:.1%}"
        print(f"redis: hit ratio {ratio} ({live.hits} hits, {live.misses} misses), {live.evicted_keys} evicted, "
              f"{live.expired_keys} expired, {live.keys} keys, {live.used_memory} of {live.maxmemory or 'unlimited'} bytes, "
              f"policy {live.maxmemory_policy}")  # fmt: skip
        for line in live.advice:
            print(f"advice: {line}")
    return EXIT_OK


def _profile_selector(profile: Profile) -> str:
    """The job the profile's Prometheus queries select, as a selector."""
    table = profile.settings.get("prometheus", {})
    if not isinstance(table, dict):
        raise UsageError(f"profiles.{profile.name}.prometheus must be a table")
    job = table.get("job")
    return f"{{job={json.dumps(str(job))}}}" if job else ""


def cmd_advise_alerts(args: argparse.Namespace) -> int:
    import yaml

    from loadwise.analysis.rundir import RunDir, json_safe
    from loadwise.analysis.steps import step_table
    from loadwise.analysis.thresholds import parse as parse_threshold
    from loadwise.analysis.stored import Stored
    from loadwise.autoscaling.advise import replicas_in_run
    from loadwise.capacity import alerts
    from loadwise.config import load_profile, threshold_texts

    run_dir = RunDir(args.run)
    info = run_dir.read_info()
    summary = run_dir.read_summary() if run_dir.has_summary() else {}
    stored = summary.get("capacity") if isinstance(summary.get("capacity"), dict) else {}
    profile = load_profile(args.profile, args.config)
    texts, notes = threshold_texts(profile) + args.slo, []
    if not texts and (stored.get("slo") or {}).get("slo"):
        texts = [stored["slo"]["slo"]]
        notes.append(f"no SLO given; using {texts[0]}, the SLO of the run's capacity analysis")
    if not texts:
        raise UsageError("no SLO: give --slo EXPR (e.g. 'p95<300ms', 'error_rate<1%'; repeatable) or slos in the profile")
    if args.replicas_in_run is not None and args.replicas_in_run < 1:
        raise UsageError("--replicas-in-run must be a positive integer")
    replicas = args.replicas_in_run if args.replicas_in_run is not None else replicas_in_run(Stored(stored, "capacity", f"{args.run}/summary.json"))
    selector = _profile_selector(profile) if args.selector is None else args.selector
    settings = settings_from(args, AlertSettings, selector=selector, replicas_in_run=replicas)
    steps = step_table(info, run_dir.read_intervals())
    group = alerts.alert_rules(info, summary.get("overall") or {}, steps, [parse_threshold(t) for t in texts], settings)
    document = yaml.safe_dump(group.document(), sort_keys=False, allow_unicode=True, width=1000)
    if args.output:
        args.output.write_text(document, encoding="utf-8")
    if args.json:
        capacity = None if group.capacity is None else vars(group.capacity) | {"per_pod_rps": group.capacity.per_pod_rps}
        print(json.dumps(json_safe({"rules": group.document(), "made": group.made, "notes": group.notes,
                                    "capacity": capacity, "output": str(args.output) if args.output else None}), indent=2))  # fmt: skip
    elif not args.output:
        print(document, end="")
    if group.capacity is not None:
        c = group.capacity
        print(f"capacity: {c.total_rps:.1f} req/s within {c.slo} in run {c.run_id} over {c.replicas} replica(s) = "
              f"{c.per_pod_rps:.1f} req/s per pod{' (at least)' if c.lower_bound else ''}", file=sys.stderr)  # fmt: skip
    for line in group.made:
        print(f"made {line}", file=sys.stderr)
    for note in notes + group.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.output:
        print(f"wrote {len(group.rules)} rule(s) in group {group.name} to {args.output}", file=sys.stderr)
    return EXIT_OK
