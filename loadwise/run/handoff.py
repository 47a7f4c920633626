"""Handing a finished run directory out of a pod.

In a Kubernetes Job the master's run directory lives on a volume that disappears with the
pod. `loadwise run --hold 15m` therefore finishes the run, writes a done marker next to
the run directories and prints it as one log line, then stays alive until
`loadwise k8s fetch` has copied the run out (it leaves a fetched marker) or the hold
passes. The fetcher and the pod agree on nothing but these two files and the log line.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DONE_FILE = ".loadwise-done.json"
FETCHED_FILE = ".loadwise-fetched"
DONE_LOG_PREFIX = "loadwise: run finished "


@dataclass
class Done:
    run: str  # the run directory's name under the runs directory
    status: str
    exit_code: int

    def to_line(self) -> str:
        return DONE_LOG_PREFIX + json.dumps(asdict(self))

    @classmethod
    def from_text(cls, text: str) -> Done | None:
        """A done record from the marker file's text or from a log line; None if it is neither."""
        text = text.strip()
        if text.startswith(DONE_LOG_PREFIX):
            text = text[len(DONE_LOG_PREFIX) :]
        try:
            raw = json.loads(text)
            return cls(str(raw["run"]), str(raw["status"]), int(raw["exit_code"]))
        except (ValueError, TypeError, KeyError):
            return None


def clear(runs_dir: Path) -> None:
    """Forget an earlier hand-off in this runs directory (a reused volume)."""
    for name in (DONE_FILE, FETCHED_FILE):
        (runs_dir / name).unlink(missing_ok=True)


def hold(runs_dir: Path, done: Done, hold_s: float, poll_s: float = 1.0) -> bool:
    """Announce the finished run and wait until it is fetched or `hold_s` passes; True if fetched."""
    (runs_dir / DONE_FILE).write_text(json.dumps(asdict(done)), encoding="utf-8")
    print(done.to_line(), file=sys.stderr, flush=True)
    print(f"loadwise: holding {runs_dir / done.run} for `loadwise k8s fetch` (at most {hold_s:g}s)", file=sys.stderr, flush=True)
    deadline = time.monotonic() + hold_s
    while time.monotonic() < deadline:
        if (runs_dir / FETCHED_FILE).exists():
            print("loadwise: run fetched", file=sys.stderr, flush=True)
            return True
        time.sleep(poll_s)
    print("loadwise: hold ended before the run was fetched", file=sys.stderr, flush=True)
    return False
