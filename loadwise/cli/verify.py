"""`loadwise verify BEFORE [AFTER]`: each applied recommendation's prediction against its measurement."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from loadwise.cli.common import add_profile_options, profile_dsn, store_results
from loadwise.analysis.stored import Stored
from loadwise.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from loadwise.readers import count


def register(sub: Any) -> None:
    verify = sub.add_parser(
        "verify", help="advice proven: predicted against measured after applying it (exit 1 if one is not confirmed)",
        description="Set each recommendation stored in BEFORE's summary.json (by `loadwise advise db|cache|hpa` "
        "and `loadwise capacity`) beside what was measured after it was applied: database indexes against the "
        "planner with the real index (--dsn-env) and the statements' times in AFTER (run it with the database's DSN, "
        "as BEFORE was); the cache size against a real Redis replaying BEFORE's key stream (--redis, an empty "
        "Redis); the replicas plan against AFTER's SLO-bound throughput (--replicas-after); the HPA settings "
        "replayed at 1x the load (0.5x and 2x beside it as robustness checks, outside the exit code). Each check "
        "says confirmed, not confirmed or not comparable (why). AFTER must be the same scenario, shape and shape "
        "parameters, and both runs completed. The verdict is stored in AFTER's summary.json (BEFORE's without "
        "AFTER) and shown in its report. Exit code 0 when every measured prediction is confirmed, 1 when one is "
        "not, 2 for bad input or when nothing could be verified (the notes say what to give).",
        epilog="example:\n  loadwise advise db runs/before --dsn-env SHOP_DSN     # then create the advised indexes\n"
        "  loadwise run browse --host http://127.0.0.1:8000 --profile pg    # the same load again\n"
        "  loadwise verify runs/before runs/after --dsn-env SHOP_DSN",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    verify.add_argument("before", metavar="BEFORE", help="the run the advice came from")
    verify.add_argument("after", metavar="AFTER", nargs="?", help="the same load after applying it (same scenario and shape)")
    verify.add_argument("--dsn-env", metavar="NAME", help="environment variable holding the database's DSN (default: the profile's db_dsn_env)")
    verify.add_argument("--redis", metavar="URL", help="an empty redis://HOST:PORT to replay BEFORE's key stream against")
    verify.add_argument("--replicas-after", type=count, metavar="N", help="instances that served AFTER (default: as given to "
                        "`loadwise capacity AFTER --replicas-in-run N`)")  # fmt: skip
    verify.add_argument("--allow-superuser", action="store_true", help="plan under a superuser DSN (as advise db)")
    add_profile_options(verify, "db_dsn_env")
    verify.add_argument("--json", action="store_true", help="print the verification as one JSON object")
    verify.set_defaults(handler=cmd_verify)


def _summary(run_dir: Any, what: str) -> dict[str, Any]:
    if not run_dir.has_summary():
        raise UsageError(f"{run_dir.path}: no summary.json ({what})")
    return run_dir.read_summary()


def _block(summary: dict[str, Any], key: str, where: str) -> Stored | None:
    return None if summary.get(key) is None else Stored(summary[key], key, where)


def _database(args: argparse.Namespace, advice: list[Any], after_dir: Any, found: Any) -> None:
    from loadwise.analysis import verify
    from loadwise.analysis.indexes import postgres
    from loadwise.analysis.indexes.settings import IndexAdvisorSettings
    from loadwise.analysis.rundir import DB_STATEMENTS_JSON
    from loadwise.config import load_profile

    dsn = profile_dsn(load_profile(args.profile, args.config), args.dsn_env)
    if not dsn:
        found.notes.append("database indexes not checked: give --dsn-env NAME (or db_dsn_env in the profile)")
        return
    queries = [s.query for index in advice for s in index.statements]
    conn = postgres.connect(dsn)
    try:
        costs, existing = postgres.costs_now(conn, queries, IndexAdvisorSettings(), allow_superuser=args.allow_superuser)
    finally:
        conn.close()
    window = None
    if after_dir is not None and after_dir.has_statements():
        path = after_dir.file(DB_STATEMENTS_JSON)
        statements, problem = postgres.recorded_window(after_dir.read_json(DB_STATEMENTS_JSON), str(path), 10**6)
        window = None if statements is None else [vars(s) for s in statements]
        if problem:
            found.notes.append(f"AFTER: {problem}")
    found.checks += verify.index_checks(advice, existing, costs, window)


def _cache(args: argparse.Namespace, advice: Any, before_dir: Any, found: Any) -> None:
    from loadwise.analysis import verify
    from loadwise.analysis.cache.advise import read_trace
    from loadwise.analysis.cache.replay import replay
    from loadwise.analysis.rundir import KEYS_CSV

    if not args.redis:
        found.notes.append("cache size not checked: give --redis URL (an empty Redis) to replay the key stream")
        return
    if not before_dir.file(KEYS_CSV).exists():
        found.checks += verify.cache_checks(advice, None, None, "BEFORE has no key sample to replay (advised from a --trace file)")
        return
    trace = read_trace(before_dir.file(KEYS_CSV))
    if len(trace) < 2:
        found.checks += verify.cache_checks(advice, None, None, f"BEFORE's key sample has {len(trace)} lookups: nothing to replay")
        return
    result = replay(trace, args.redis, advice.replayed_entries)
    how = (f"{result.requests} lookups replayed on Redis, maxmemory {result.maxmemory} bytes for {result.entries} entries "
           f"({result.bytes_per_entry:.0f} bytes each), {result.policy} sampling {result.samples} keys")  # fmt: skip
    found.checks += verify.cache_checks(advice, result.hit_ratio, result.held, how)


def _capacity(args: argparse.Namespace, advice: Any, after_dir: Any, after: dict[str, Any], found: Any) -> None:
    from loadwise.analysis import verify
    from loadwise.analysis.rundir import SUMMARY_JSON
    from loadwise.analysis.steps import STEP_SHAPES, step_table
    from loadwise.capacity.planning import slo_capacity

    if advice.per_instance is None:
        found.notes.append("replicas plan not checked: BEFORE's capacity has no SLO-bound throughput "
                           "(`loadwise capacity BEFORE --slo 'p95<...'`)")  # fmt: skip
        return
    if after_dir is None:
        found.notes.append("replicas plan not checked: give AFTER, a step run against more instances (and --replicas-after N)")
        return
    if advice.statistic is None or advice.slo_ms is None:
        raise UsageError(f"{args.before}: summary.json capacity has no settings.slo_ms/slo_statistic "
                         "(written by an older release): re-run `loadwise capacity BEFORE --slo ...`")  # fmt: skip
    info = after_dir.read_info()
    if info.shape not in STEP_SHAPES:
        found.checks.append(verify.capacity_check(advice, verify.MeasuredCapacity(None, f"AFTER is not a step run ({info.shape})"), 1))
        return
    replicas = args.replicas_after
    if replicas is None:
        settings = Stored(after.get("capacity") or {}, "capacity", str(after_dir.file(SUMMARY_JSON))).optional_child("settings")
        replicas = None if settings is None else settings.whole("replicas_in_run", None, low=1)
    if replicas is None:
        raise UsageError("how many instances served AFTER? give --replicas-after N (or run `loadwise capacity AFTER --replicas-in-run N`)")
    steps = step_table(info, after_dir.read_intervals(), after_dir.read_iterations())
    if steps.empty:
        found.checks.append(verify.capacity_check(advice, verify.MeasuredCapacity(None, "AFTER has no steady steps"), replicas))
        return
    if f"{advice.statistic}_ms" not in steps.columns:
        raise UsageError(f"{args.before}: summary.json capacity.settings.slo_statistic {advice.statistic!r} is not a step statistic")
    slo = slo_capacity(steps, advice.slo_ms, advice.statistic)
    measured = verify.MeasuredCapacity(slo.capacity_rps, f"AFTER's steps: {slo.note}", slo.lower_bound,
                                       missed=slo.capacity_rps is None and slo.broken_at_step is not None)  # fmt: skip
    found.checks.append(verify.capacity_check(advice, measured, replicas))


def cmd_verify(args: argparse.Namespace) -> int:
    from loadwise.analysis import verify
    from loadwise.analysis.rundir import SUMMARY_JSON, RunDir, json_safe
    from loadwise.analysis.summary import RunSummary
    from loadwise.autoscaling.advise import StoredHpa, replay

    before_dir = RunDir(args.before)
    before_info = before_dir.read_info()
    before = _summary(before_dir, "nothing to verify: advise on it first")
    where = str(before_dir.file(SUMMARY_JSON))
    after_dir = RunDir(args.after) if args.after else None
    after: dict[str, Any] = {}
    after_info = None
    if after_dir is not None:
        after_info = after_dir.read_info()
        after = _summary(after_dir, "has the AFTER run finished?")
        why = verify.comparable(vars(before_info), vars(after_info))
        if why:
            raise UsageError(f"{args.after} is not the same load as {args.before}: {why}")
    # Every block is read (and checked) before anything touches a database or a Redis.
    blocks = {key: _block(before, key, where) for key in ("database", "cache", "capacity", "hpa")}
    if not any(blocks.values()):
        raise UsageError(f"{args.before}: no advice stored (run `loadwise advise db|cache|hpa` or `loadwise capacity` on it first)")
    database = verify.advised_indexes(blocks["database"]) if blocks["database"] else None
    cache = verify.AdvisedCache.read(blocks["cache"]) if blocks["cache"] else None
    capacity = verify.AdvisedCapacity.read(blocks["capacity"]) if blocks["capacity"] else None
    hpa = StoredHpa.read(blocks["hpa"]) if blocks["hpa"] else None

    found = verify.Verification(before_info.id, after_info.id if after_info else None)
    if database is not None:
        _database(args, database, after_dir, found)
    if cache is not None:
        _cache(args, cache, before_dir, found)
    if capacity is not None:
        _capacity(args, capacity, after_dir, after, found)
    if hpa is not None:
        found.checks += verify.hpa_checks(replay(hpa, before_dir.read_intervals()), hpa.budget_s)
    if after_dir is not None:
        found.checks += verify.endpoint_checks(RunSummary.from_dict(before), RunSummary.from_dict(after))
    else:
        found.notes.append("no AFTER run: only what the services and the simulator can show now was checked")
    store_results(after_dir or before_dir, verification=found.report_block() | {"result": json_safe(found.to_dict())})
    if args.json:
        print(json.dumps(json_safe(found.to_dict()), indent=2))
    else:
        _print(found)
    if not found.judged:
        print("loadwise verify: error: nothing was verified: no recommendation was both applied and measured (the notes say "
              "what to give)", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    return EXIT_OK if found.passed else EXIT_FAILED


def _print(found: Any) -> None:
    block = found.report_block()
    print(block["headline"])
    for row in block["tables"][0]["rows"]:
        advice, quantity, before, predicted, measured, error, verdict, how = row
        print(f"{verdict:<15} {advice}: {quantity}: before {before}, predicted {predicted}, measured {measured} ({error})")
        print(f"                {how}")
    for note in found.notes:
        print(f"loadwise verify: note: {note}", file=sys.stderr)
