"""How a typed value is read from a command line: one reader per kind, shared by loadwise's
parser and by the options loadwise adds to Locust's, so a bad value is a one-line argparse
error naming the option on either side, never a traceback or a silently odd run.
Light (argparse and loadwise.durations only): every `--help` imports it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from loadwise.durations import parse_duration


def duration_or_zero(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def duration(text: str) -> float:
    seconds = duration_or_zero(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be longer than zero")
    return seconds


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive, finite number")
    return value


def _whole(text: str, low: int, high: int | None, what: str) -> int:
    """A whole number in [low, high]; otherwise an argparse error saying `what` it must be."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"{text!r} must be {what}")
    return value


def count(text: str) -> int:
    return _whole(text, 1, None, "at least 1")


def workers(text: str) -> int:
    """A worker count: N >= 0, or `auto` / -1 for one per CPU core (Locust's --processes -1)."""
    import os

    if text in ("auto", "-1"):
        return os.cpu_count() or 1
    return _whole(text, 0, None, "0 or more workers, or auto / -1 for one per CPU core")


def exit_code(text: str) -> int:
    return _whole(text, 0, 255, "an exit code from 0 to 255")


def ms(text: str) -> float:
    try:
        return parse_duration(text if text[-1:].isalpha() else f"{text}ms") * 1000.0
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def fraction(text: str) -> float:
    """5% or 0.05; 0 to 100 % inclusive."""
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction (e.g. 5% or 0.05)") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 100%")
    return value


PARSE: dict[str, Callable[[str], Any]] = {
    "int": int, "float": float, "str": str, "fraction": fraction, "duration": duration_or_zero,
    "ms": ms, "positive": positive, "count": count,
}  # fmt: skip
