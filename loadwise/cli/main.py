"""The `loadwise` command line: the parser, and expected errors as one line with their exit code.

Each command group lives in its own module (run, report, gate, capacity, advise, k8s),
which registers its parser and imports what its work needs only when it runs, so
`loadwise --help` loads no numpy, pandas, matplotlib, scipy, Locust or Kubernetes client.
Exit codes: 0 ok; 1 the run failed or was interrupted, a gate failed; 2 bad arguments,
missing or malformed files (one line on stderr, never a traceback); 3 a bug in loadwise
("internal error", the traceback written to a file).
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from loadwise.cli import advise, capacity, gate, k8s, report, run, verify
from loadwise.cli.args import Parser
from loadwise.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_USAGE, LoadwiseError

COMMAND_GROUPS = (run, report, gate, capacity, advise, verify, k8s)


def build_parser() -> Parser:
    parser = Parser(prog="loadwise", description="Load tests with Locust that end in answers.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    locust_args: list[str] = []
    if argv[:1] and argv[0] in run.PASS_THROUGH_COMMANDS:  # what loadwise does not own goes to Locust's own parser
        ours, locust_args = run.split_locust_args(argv[1:], argv[0])
        argv = [argv[0], *ours]
    args = parser.parse_args(argv)
    args.locust_args = locust_args
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    _notes_as_lines(args.command)
    try:
        return args.handler(args)
    except LoadwiseError as exc:
        print(f"loadwise {args.command}: error: {_where(exc, args)}{_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # an output path that cannot be written, a file that cannot be read
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"loadwise {args.command}: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"loadwise {args.command}: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # a bug in loadwise: bad input raises LoadwiseError (or OSError) above
        if os.environ.get("LOADWISE_DEBUG"):
            raise
        print(f"loadwise {args.command}: internal error: {type(exc).__name__}: {_one_line(exc)} "
              f"(a bug in loadwise, not your input; traceback in {_save_traceback(args.command)})", file=sys.stderr)  # fmt: skip
        return EXIT_INTERNAL


def _save_traceback(command: str) -> str:
    """Write the current exception's traceback to a file of its own; its path (or where it could not go)."""
    import tempfile
    import traceback

    try:
        fd, path = tempfile.mkstemp(prefix=f"loadwise-{command}-internal-error-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(f"loadwise {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
        return path
    except OSError as exc:
        return f"nowhere: {exc.strerror or exc}; LOADWISE_DEBUG=1 prints it"


def _notes_as_lines(command: str) -> None:
    """A damaged-but-readable input is one `note:` line on stderr; numpy's warnings about
    empty or NaN slices are noise beside a one-line error, so they are not shown."""
    from loadwise.analysis.rundir import RunDirWarning

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        if issubclass(category, RunDirWarning):
            print(f"loadwise {command}: note: {message}", file=sys.stderr)

    warnings.showwarning = show  # type: ignore[assignment]
    warnings.simplefilter("always", RunDirWarning)
    warnings.filterwarnings("ignore", category=RuntimeWarning)


def _where(exc: LoadwiseError, args: Any) -> str:
    """A stored histogram is decoded deep inside an analysis: name the run's intervals file."""
    from loadwise.analysis.histogram import HistogramError

    runs = [str(getattr(args, key)) for key in ("run", "run_a", "run_b", "baseline") if getattr(args, key, None)]
    if not isinstance(exc, HistogramError) or not runs:
        return ""
    return " or ".join(f"{run}/intervals.csv" for run in dict.fromkeys(runs)) + ": "


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else text[:397] + "..."


def run_main() -> Any:
    sys.exit(main())
