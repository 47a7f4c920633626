"""loadwise's argument parser class, and settings classes turned into options.

Every value a user types goes through one of loadwise.readers, so a bad one is a one-line
argparse error naming the option, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

from loadwise.errors import EXIT_USAGE
from loadwise.readers import PARSE

T = TypeVar("T")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of a usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _shown(value: Any, parse: str) -> str:
    if parse == "fraction":
        return f"{value * 100:g}%%"
    if parse == "duration":
        return f"{value:g}s"
    if parse == "ms":
        return f"{value:g}ms"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _flag(f: dataclasses.Field) -> str:
    return f.metadata["option"]["flag"] or "--" + f.name.replace("_", "-")


def add_settings(parser: argparse.ArgumentParser | Any, settings: type, *, skip: tuple[str, ...] = ()) -> None:
    """One option per `option(...)` field of the settings class; the help says the default."""
    for f in dataclasses.fields(settings):
        meta = f.metadata.get("option")
        if meta is None or f.name in skip:
            continue
        shown = meta["shown"] or ("" if f.default is None else _shown(f.default, meta["parse"]))
        text = meta["help"] + (f" (default {shown})" if shown else "")
        parser.add_argument(_flag(f), dest=f.name, type=PARSE[meta["parse"]], default=f.default,
                            metavar=meta["metavar"], choices=meta["choices"], help=text)  # fmt: skip


def settings_from(args: argparse.Namespace, settings: type[T], **overrides: Any) -> T:
    """The settings class built from the parsed options (fields without an option keep their default)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(settings)
              if "option" in f.metadata and hasattr(args, f.name)}  # fmt: skip
    return settings(**(values | overrides))
