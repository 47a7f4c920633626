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
from loadwise.cli import args as types
from loadwise.cli.args import Parser, add_settings, settings_from
from loadwise.cli.common import add_profile_options, store_results
from loadwise.cli.k8s import add_cluster_options
from loadwise.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from loadwise.analysis.rundir import RunDir
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
    add_settings(db, IndexAdvisorSettings)
    db.add_argument("--allow-superuser", action="store_true",
                    help="advise under a superuser DSN anyway. Refused by default: planning runs IMMUTABLE functions the "
                    "statements call, and a superuser's functions can write despite the read-only transaction "
                    "(e.g. through dblink); use a role with pg_read_all_stats and SELECT instead (README)")  # fmt: skip
    add_profile_options(db, "db_dsn_env")
    db.add_argument("--json", action="store_true", help="print one JSON object: indexes, drop, seq_scans")

    hpa = advisors.add_parser(
        "hpa", help="HorizontalPodAutoscaler settings proven on a simulator of the HPA controller",
        description="Replay a traffic trace through a simulator of the Kubernetes HPA controller with the per-pod "
        "capacity and CPU per request this run measured, search targets, minReplicas and behaviors, and keep the "
        "cheapest setting whose SLO-violation time stays within the budget. Prints it beside the current settings "
        "(or the 80%% CPU default) and writes a validated autoscaling/v2 manifest.",
    )  # fmt: skip
    hpa.add_argument("run", metavar="RUN", help="run directory (its capacity analysis and server CPU metrics)")
    hpa.add_argument("--trace", default="spike", help="diurnal, spike, ramp, run (this run's own load), or FILE.csv (timestamp,rps)")
    hpa.add_argument("--peak-rps", type=types.positive, help="peak of the synthetic traces (default: 10 pods at capacity)")
    hpa.add_argument("--capacity-rps", type=types.positive, help="SLO-bound requests/s per pod (default: from `loadwise capacity`)")
    hpa.add_argument("--cpu-per-request", type=types.positive, help="CPU seconds per request (default: measured by the collector)")
    hpa.add_argument("--cpu-request", type=types.positive, default=0.5, help="CPU cores each pod requests (default 0.5)")
    hpa.add_argument("--startup", type=types.duration_or_zero, default=30.0, help="pod start-up time before serving (default 30s)")
    add_settings(hpa, HpaSettings)
    hpa.add_argument("--current-min", type=int, default=1, help="current minReplicas (default 1; or read from the cluster)")
    hpa.add_argument("--current-max", type=int, default=20, help="current maxReplicas (default 20)")
    hpa.add_argument("--current-target", type=types.fraction, default=0.8, help="current CPU utilization target (default 80%%)")
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
        "Example: loadwise advise alerts RUN --slo 'p95<300ms' --slo 'error_rate<1%%' --selector '{job=\"shop\"}' -o alerts.yml",
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
        window = None
        if run_dir is not None and (run_dir.path / DB_STATEMENTS_JSON).exists():
            recorded = run_dir.read_json(DB_STATEMENTS_JSON)
            if not isinstance(recorded, dict) or not isinstance(recorded.get("statements", []), list):
                raise UsageError(f"{run_dir.path / DB_STATEMENTS_JSON}: not a statement window (problem, statements)")
            if recorded.get("problem"):
                print(f"note: the run's statements were not recorded ({recorded['problem']}); using all statistics", file=sys.stderr)
            else:
                window = [_recorded_statement(s, run_dir.path / DB_STATEMENTS_JSON, i)
                          for i, s in enumerate(recorded["statements"][: settings.top])]  # fmt: skip
        conn = pgadvisor.connect(_dsn(args))
        try:
            result = pgadvisor.advise(conn, settings, window, allow_superuser=args.allow_superuser)
        finally:
            conn.close()
        result["window"] = "the run (pg_stat_statements at its start and end)" if window is not None else "since the statistics were reset"
    if run_dir is not None:
        store_results(run_dir, database=json_safe(result))
    for skipped in result.get("skipped", []):
        query = " ".join(skipped["query"].split())
        print(f"note: statement not planned ({skipped['reason']}): {query[:100]}", file=sys.stderr)
    if args.json:
        print(json.dumps(json_safe(result), indent=2))
        return EXIT_OK
    if not result["indexes"]:
        print(f"no index would cut the cost of the top {result['statements_considered']} statements by {settings.min_cut:.0%}")
    for r in result["indexes"]:
        size = "size unknown" if r["size_bytes"] is None else f"size {r['size_bytes'] / 1e6:.1f} MB"
        unit = result.get("cost_unit", "planner cost")
        print(f"{r['create_statement']}\n  {unit} {r['cost_before']:.0f} -> {r['cost_after']:.0f}, {size}, helps:")
        for s in r["statements"]:
            print(f"    {s['calls']} calls, {s['total_ms']:.0f} ms total, mean {s['mean_ms']:.2f} ms: {s['query'][:100]}")
        for note in r.get("notes", []):
            print(f"  note: {note}")
    for d in result["drop"]:
        age = f" (statistics {d['stats_age']} old)" if d.get("stats_age") else ""
        print(f"{d['drop_statement'] or '-- ' + d['name'] + ':'}  -- {d['reason']}{age}")
    for s in result["seq_scans"][:5]:
        print(f"table {s['table']}: {s['seq_scans']} sequential scans read {s['rows_read']} rows ({s['rows_per_scan']} per scan)")
    return EXIT_OK


def _recorded_statement(entry: Any, path: Path, index: int) -> Any:
    """One entry of a run's db_statements.json, its types checked (the file is outside input)."""
    from loadwise.analysis.indexes.choose import Statement

    numbers = ("queryid", "calls", "total_ms", "mean_ms", "rows")
    if (not isinstance(entry, dict) or not isinstance(entry.get("query"), str)
            or not all(isinstance(entry.get(k), (int, float)) and not isinstance(entry.get(k), bool) for k in numbers)):
        raise UsageError(f"{path}: statements[{index}] needs a text query and numbers {', '.join(numbers)}")
    return Statement(int(entry["queryid"]), entry["query"], int(entry["calls"]), float(entry["total_ms"]),
                     float(entry["mean_ms"]), int(entry["rows"]))  # fmt: skip


def _stored_replicas(capacity: dict[str, Any], run: str) -> int:
    """The instances that served the run, as given to `loadwise capacity` (default 1)."""
    replicas = (capacity.get("settings") or {}).get("replicas_in_run", 1)
    if not isinstance(replicas, int) or replicas < 1:
        raise UsageError(f"{run}: summary.json capacity.settings.replicas_in_run must be a positive integer")
    return replicas


def _measured_cpu_per_request(run_dir: RunDir, metrics: pd.DataFrame) -> float | None:
    """CPU seconds per request: server CPU over server request rate, on intervals with load."""
    from loadwise.analysis.align import align, preferred_source

    if metrics.empty:
        return None
    frame = align(run_dir.read_intervals(), metrics, source=preferred_source(metrics))
    if not {"cpu_cores", "server_rps"} <= set(frame.columns):
        return None
    busy = frame[(frame["server_rps"] > 0) & frame["cpu_cores"].notna()]
    if busy.empty:
        return None
    return float(busy["cpu_cores"].sum() / busy["server_rps"].sum())


def _peak_memory_per_pod(metrics: pd.DataFrame, replicas: int) -> float | None:
    """The highest resident memory the collector saw under load, per serving instance."""
    from loadwise.analysis import metrics as m

    memory = metrics[metrics["series"] == m.MEMORY]["value"] if not metrics.empty else metrics
    return float(memory.max()) / replicas if len(memory) and memory.max() > 0 else None


def _trace(args: argparse.Namespace, run_dir: RunDir, capacity: float) -> Any:
    from loadwise.autoscaling import traces

    peak = args.peak_rps or 10 * capacity
    if args.trace == "diurnal":
        return traces.diurnal(peak)
    if args.trace == "spike":
        return traces.spike(peak)
    if args.trace == "ramp":
        return traces.ramp(peak)
    if args.trace == "run":
        from loadwise.analysis.align import client_frame

        frame = client_frame(run_dir.read_intervals())
        if len(frame) < 2:
            raise UsageError("--trace run: the run has fewer than two intervals")
        seconds = [t.timestamp() for t in frame.index]
        import numpy as np

        return traces.from_series("run", np.array(seconds), frame["rps"].to_numpy(float))
    if args.trace.endswith(".csv"):
        return traces.from_csv(Path(args.trace))
    raise UsageError(f"--trace {args.trace!r}: use diurnal, spike, ramp, run or a .csv file")


def cmd_advise_hpa(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import yaml

    from loadwise.analysis.rundir import RunDir, json_safe
    from loadwise.autoscaling import manifest
    from loadwise.autoscaling.hpa import KUBERNETES_SEMANTICS, HPASpec, PodModel
    from loadwise.autoscaling.recommend import recommend
    from loadwise.autoscaling.requests import recommend_resources
    from loadwise.k8s import hpa as cluster

    run_dir = RunDir(args.run)
    run_dir.read_info()
    summary = run_dir.read_summary() if run_dir.has_summary() else {}
    replicas_in_run = _stored_replicas(summary.get("capacity") or {}, args.run)
    capacity = args.capacity_rps
    if capacity is None:
        slo = (summary.get("capacity") or {}).get("slo") or {}
        if not slo.get("capacity_rps"):
            raise UsageError("no per-pod capacity: run `loadwise capacity RUN --slo 'p95<...'` first, or pass --capacity-rps")
        capacity = slo["capacity_rps"] / replicas_in_run
    metrics = run_dir.read_metrics()
    cpu = args.cpu_per_request or _measured_cpu_per_request(run_dir, metrics)
    if not cpu:
        raise UsageError("no CPU per request: run with --scrape or --prometheus so the server's CPU is collected, or pass --cpu-per-request")
    current_state = None
    if (args.namespace or args.context) and not args.deployment:
        raise UsageError("--namespace and --context read the cluster: name the --deployment the HPA scales")
    if args.deployment:
        current_state = cluster.read(args.deployment, args.namespace, args.context)
    cpu_request = (current_state.cpu_request if current_state and current_state.cpu_request else args.cpu_request)
    pod = PodModel(cpu_per_request=cpu, capacity_rps=capacity, cpu_request=cpu_request, startup_s=args.startup)
    settings = settings_from(args, HpaSettings)
    resources = recommend_resources(capacity, cpu, pod.idle_cpu, _peak_memory_per_pod(metrics, replicas_in_run),
                                    settings.memory_margin)  # fmt: skip
    current = current_state.hpa if current_state and current_state.hpa else None
    if current is None:
        try:  # only the --current-* values: a ValueError from elsewhere is a bug, not bad input
            current = HPASpec(args.current_min, args.current_max, "cpu", args.current_target)
        except ValueError as exc:
            raise UsageError(f"--current-min/--current-max/--current-target: {exc}") from None
    trace = _trace(args, run_dir, capacity)  # a bad --trace raises TraceError, a LoadwiseError
    # The recommended settings are searched with the recommended request, so their CPU target is
    # a share of the SLO-bound capacity; the current ones keep the request they run with.
    result = recommend(pod, trace, current, settings, resized=replace(pod, cpu_request=resources.cpu_request))
    name = args.deployment or "my-service"
    docs = {}
    for key, cand, request in (("recommended", result.recommended, result.recommended_pod.cpu_request),
                               ("current", result.current, cpu_request)):  # fmt: skip
        try:
            docs[key] = manifest.to_yaml(manifest.hpa_manifest(cand.spec, name, args.namespace, request))
        except manifest.ManifestError as exc:
            raise UsageError(str(exc)) from None
    if args.output:
        args.output.write_text(docs["recommended"], encoding="utf-8")
    applied: list[str] = []
    if args.yes and not args.apply:
        raise UsageError("--yes goes with --apply")
    if args.apply:
        if not args.deployment:
            raise UsageError("--apply needs --deployment (and the cluster's -n/--namespace, --context if not the kubeconfig's)")
        applied = cluster.apply_hpa(yaml.safe_load(docs["recommended"]), args.namespace, args.context, for_real=args.yes)
        if not args.yes:
            applied.append("not applied: the dry run passed; add --yes to apply it")
    out = {
        "trace": trace.name, "peak_rps": trace.peak_rps, "duration_s": trace.duration_s, "budget_s": result.budget_s,
        "per_pod_capacity_rps": capacity, "cpu_per_request_s": cpu, "cpu_request_cores": cpu_request,
        "startup_s": args.startup, "settings_searched": result.searched, "notes": result.notes,
        "recommended": result.recommended.evidence() | {"manifest": docs["recommended"]},
        "current": result.current.evidence() | {"manifest": docs["current"]},
        "applied": applied,
        "resources": {"cpu_request_cores": resources.cpu_request, "memory_bytes": resources.memory_bytes,
                      "used_by_recommendation": result.recommended_pod.cpu_request == resources.cpu_request,
                      "evidence": resources.evidence, "patch": yaml.safe_dump(resources.patch(name), sort_keys=False)},
        "kubernetes_semantics": KUBERNETES_SEMANTICS,
    }  # fmt: skip
    rec_sim, cur_sim = result.recommended.result, result.current.result  # the replays recommend() ran
    every = max(1, len(rec_sim.times) // 400)
    store_results(run_dir, hpa={k: v for k, v in out.items() if k not in ("recommended", "current", "applied")} | {
        "recommended": result.recommended.evidence(), "current": result.current.evidence(),
        "series": {"t": rec_sim.times[::every], "load": rec_sim.load[::every],
                   "recommended": rec_sim.replicas[::every], "current": cur_sim.replicas[::every]},
    })  # fmt: skip
    if args.json:
        print(json.dumps(json_safe(out), indent=2))
        return EXIT_OK
    print(f"trace {trace.name}: peak {trace.peak_rps:.0f} req/s over {trace.duration_s / 3600:.1f} h; per pod "
          f"{capacity:.1f} req/s within the SLO, {cpu * 1000:.2f} ms CPU per request, {cpu_request:g} cores requested")  # fmt: skip
    for key in ("recommended", "current"):
        e = out[key]
        print(f"{key:<12} target {e['target']:.0%} min {e['min_replicas']} max {e['max_replicas']} ({e['behavior']}): "
              f"{e['replica_hours']:.1f} replica-hours, SLO broken {e['slo_violation_seconds']:.0f} s, peak {e['peak_replicas']} replicas")  # fmt: skip
    for note in result.notes:
        print(f"note: {note}")
    memory = "no memory measured" if resources.memory_bytes is None else f"memory {resources.memory_bytes // 2**20} MiB (request = limit)"
    print(f"resources: CPU request {resources.cpu_request * 1000:.0f}m (the CPU of one pod at its SLO capacity), {memory}; "
          f"simulated with Kubernetes {KUBERNETES_SEMANTICS} HPA semantics")  # fmt: skip
    for line in applied:
        print(line)
    print(docs["recommended"], end="")
    print("---")
    print(out["resources"]["patch"], end="")
    return EXIT_OK


def cmd_advise_cache(args: argparse.Namespace) -> int:
    from loadwise.analysis.cache import advise as cacheadvisor
    from loadwise.analysis.cache import redis as cache_redis
    from loadwise.analysis.rundir import KEYS_CSV, RunDir, json_safe

    if not (args.run or args.trace or args.redis):
        raise UsageError("give RUN, --trace FILE.csv or --redis URL")
    settings = settings_from(args, CacheSettings)
    out: dict[str, Any] = {}
    run_dir = RunDir(args.run) if args.run else None
    if args.trace or run_dir is not None:
        miss_latency, rate = None, 1.0
        if args.trace:
            trace = cacheadvisor.read_trace(args.trace)
        else:
            info = run_dir.read_info()
            if not info.key_sample:
                raise UsageError(f"{args.run}: no key sample: run with --cache-endpoint NAME (e.g. '/products/[id]')")
            trace = cacheadvisor.read_trace(run_dir.file(KEYS_CSV))
            rate = float(info.key_sample.get("rate", 1.0))
            if not 0 < rate <= 1:
                raise UsageError(f"{args.run}: run.json key_sample.rate {rate!r} must be in (0, 1]")
            endpoints = {f"{e['method']} {e['name']}": e for e in run_dir.read_summary().get("endpoints", [])}
            means = [e["mean_ms"] for label, e in endpoints.items() if label.split(" ", 1)[1] in info.key_sample["endpoints"]]
            miss_latency = float(means[0]) if means and means[0] is not None else None
        out = cacheadvisor.analyze(trace, settings, miss_latency, rate)
    if args.redis:
        out["redis"] = cache_redis.redis_report(args.redis, (out.get("recommended") or {}).get("entries"))
    if run_dir is not None and "mrc" in out:
        store_results(run_dir, cache=out)
    if args.json:
        print(json.dumps(json_safe(out), indent=2))
        return EXIT_OK
    if "recommended" in out:
        r = out["recommended"]
        print(f"{out['requests']} requests, {out['distinct_keys']} distinct keys ({out['method']} curve"
              f"{'' if out['sample_rate'] == 1 else ', keys sampled at ' + format(out['sample_rate'], '.3g')}); "
              f"one-hit wonders {out['one_hit_wonder_ratio']:.0%}")  # fmt: skip
        size = f"{r['entries']} entries" + (f" (~{r['bytes'] / 1e6:.1f} MB)" if r["bytes"] else "")
        print(f"recommended: {size} for a {r['expected_hit_ratio']:.0%} hit ratio ({r['chosen_by']}), "
              f"TTL {r['ttl_s'][0]:g}-{r['ttl_s'][1]:g} s")  # fmt: skip
        effect = out["expected_effect"]
        line = f"expected: backend {effect['backend_requests_per_s']:.1f} of {effect['requests_per_s']:.1f} req/s"
        if "mean_latency_ms" in effect:
            line += f", mean latency {effect['miss_latency_ms']:.1f} -> {effect['mean_latency_ms']:.1f} ms"
        print(line)
        for note in out["notes"]:
            print(f"note: {note}")
    if "redis" in out:
        rd = out["redis"]
        ratio = "-" if rd["hit_ratio"] is None else f"{rd['hit_ratio']:.1%}"
        print(f"redis: hit ratio {ratio} ({rd['hits']} hits, {rd['misses']} misses), {rd['evicted_keys']} evicted, "
              f"{rd['expired_keys']} expired, {rd['keys']} keys, {rd['used_memory']} of {rd['maxmemory'] or 'unlimited'} bytes, "
              f"policy {rd['maxmemory_policy']}")  # fmt: skip
        for advice in rd["advice"]:
            print(f"advice: {advice}")
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
    replicas = args.replicas_in_run if args.replicas_in_run is not None else _stored_replicas(stored, args.run)
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
