"""Pieces several commands share: verdict options, KEY=VALUE lists, storing results in a run."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from loadwise.errors import UsageError


def key_values(items: list[str], option: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def add_profile_options(parser: argparse.ArgumentParser, what: str, *, locust_owns_config: bool = False) -> None:
    """--profile and the loadwise.toml to read it from. `loadwise run` leaves `--config` to
    Locust (a locust.conf), so there the file is `--loadwise-config` only."""
    parser.add_argument("--profile", help=f"profile in loadwise.toml ({what})")
    flags = ("--loadwise-config",) if locust_owns_config else ("--loadwise-config", "--config")
    parser.add_argument(*flags, dest="config", type=Path, metavar="FILE", help="loadwise configuration (default ./loadwise.toml)")


def add_verdict_options(parser: argparse.ArgumentParser, json_help: str) -> None:
    parser.add_argument("--threshold", action="append", default=[], metavar="EXPR",
                        help="e.g. 'p95<300ms', 'error_rate<1%%', 'GET /products/[id]: p95<50ms'; repeatable")
    add_profile_options(parser, "its slos/thresholds decide the verdict")
    parser.add_argument("--json", action="store_true", help=json_help)


def thresholds(args: argparse.Namespace) -> list[Any]:
    """The profile's slos/thresholds and every --threshold, parsed."""
    from loadwise.analysis.thresholds import parse
    from loadwise.config import load_profile, threshold_texts

    profile = load_profile(args.profile, args.config)
    return [parse(text) for text in threshold_texts(profile) + args.threshold]


def store_results(run_dir: Any, **entries: Any) -> None:
    """Add analysis results to the run's summary.json and keep its report (if any) in step."""
    stored = run_dir.read_summary() if run_dir.has_summary() else {}
    stored.update(entries)
    run_dir.write_summary(stored)
    if run_dir.has_report():
        from loadwise.reports import data, render

        render.write(data.load(str(run_dir.path)))


def profile_dsn(profile: Any, env_name: str | None = None) -> str | None:
    """The DSN from the environment variable named by `env_name` or the profile's db_dsn_env."""
    name = env_name or profile.settings.get("db_dsn_env")
    if not name:
        return None
    value = os.environ.get(str(name))
    if not value:
        where = "" if env_name else "the profile's db_dsn_env names "
        raise UsageError(f"{where}environment variable {name} is not set")
    return value
