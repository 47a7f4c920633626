"""After the Locust processes exited: make the run directory true, whatever happened to them.

The Locust process normally finishes run.json and summary.json itself. When it died first
(killed, crashed, out of memory), `run.json` still says `running`: the verdict is then given
here, by the same function the Locust process uses (loadwise.engine.status). A run directory
that cannot be written any more (a full disk) still ends `failed`, in place if need be.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

from loadwise.analysis import summary as summaries
from loadwise.analysis.rundir import LOCUST_LOG, RUN_JSON, STATUS_RUNNING, RunDir, RunDirError, iso_utc
from loadwise.engine.status import run_status
from loadwise.errors import LoadwiseError
from loadwise.run.processes import last_error


class RunError(LoadwiseError):
    """The run could not start; the message says why (exit code 2)."""


@dataclass
class RunResult:
    run_dir: RunDir
    status: str
    reason: str | None
    summary: dict[str, Any]
    aborted: dict[str, Any] = field(default_factory=dict)  # run.json's: the --abort-on threshold that stopped it


def finish(run_dir: RunDir, returncode: int, interrupted: bool, write_problem: str | None = None) -> RunResult:
    """Make `run.json` and `summary.json` true even when Locust died without writing them."""
    if not (run_dir.path / RUN_JSON).exists():
        raise RunError(f"Locust exited (code {returncode}) before the run started: {last_error(run_dir.path / LOCUST_LOG)}")
    info = run_dir.read_info()
    if info.status == STATUS_RUNNING:
        info.status, info.status_reason = run_status(exit_code=returncode, interrupted=interrupted,
                                                     write_error=write_problem or None)  # fmt: skip
        info.ended_at = iso_utc(time.time())
        run_dir.write_info(info)
        summary = summaries.write_summary(run_dir)
    else:
        try:
            summary = run_dir.read_summary()
        except Exception:
            summary = summaries.write_summary(run_dir)
    return RunResult(run_dir, info.status, info.status_reason, summary, info.aborted)


def unwritable(run_dir: RunDir, exc: OSError) -> RunResult:
    """The run directory is full or read-only: mark the run failed in run.json if that can
    still be written (in place, within the space the file already holds, when a new copy
    does not fit), else say so on stderr; the summary of what was recorded is printed."""
    status, reason = run_status(write_error=f"{exc.strerror or exc}")
    summary: dict[str, Any] = {}
    try:
        info = run_dir.read_info()
        info.status, info.status_reason = status, reason
        info.ended_at = info.ended_at or iso_utc(time.time())
        summary = summaries.summarize(info, run_dir.read_intervals()).to_dict()
        run_dir.write_info(info, in_place_if_full=True)
    except (OSError, RunDirError):
        print(f"loadwise run: {run_dir.file(RUN_JSON)} could not be updated either: the run failed ({reason})",
              file=sys.stderr)  # fmt: skip
    return RunResult(run_dir, status, reason, summary)
