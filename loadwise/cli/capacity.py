"""`loadwise capacity`: model fit, knee, SLO-bound capacity and replicas from a step run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from loadwise.capacity.settings import CapacitySettings
from loadwise.cli.args import add_settings, settings_from
from loadwise.cli.common import add_profile_options, store_results
from loadwise.errors import EXIT_OK, UsageError


def register(sub: Any) -> None:
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
    add_settings(cap, CapacitySettings)
    add_profile_options(cap, "its slos")
    cap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    cap.set_defaults(handler=cmd_capacity)


def _latency_slo(args: argparse.Namespace) -> tuple[str, float] | None:
    from loadwise.analysis.thresholds import parse as parse_threshold
    from loadwise.config import load_profile, threshold_texts

    texts = [args.slo] if args.slo else threshold_texts(load_profile(args.profile, args.config))
    for text in texts:
        threshold = parse_threshold(text)
        if threshold.endpoint is None and threshold.statistic in ("p50", "p95", "p99") and threshold.op in ("<", "<="):
            return threshold.statistic, threshold.limit
        if args.slo:
            raise UsageError(f"--slo {text!r}: a capacity SLO is an overall latency bound such as 'p95<300ms'")
    return None


def cmd_capacity(args: argparse.Namespace) -> int:
    from loadwise.analysis.rundir import RunDir, json_safe
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
    settings = settings_from(args, CapacitySettings, slo_ms=slo[1] if slo else None, slo_statistic=slo[0] if slo else "p95")
    plan = capacity_report.analyze(Path(args.run), settings)
    store_results(RunDir(args.run), capacity=plan.to_dict() | {"settings": vars(settings)})
    print(json.dumps(json_safe(plan.to_dict()), indent=2) if args.json else capacity_report.plan_text(plan))
    return EXIT_OK
