"""What a Locust process tells `loadwise run` on its standard output (`--status-stream`).

A status record every second (the live line `loadwise run` shows; its rendered form is
also what `loadwise k8s follow` reads back from a pod's log), and which run directory
started or finished (a web UI session has several). Both start with a character no log
line does, so `loadwise run` tells them from Locust's own output.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from loadwise.engine.recorder import OTHER_NAME

STATUS_PREFIX = "\x1eloadwise-status "
RUN_DIR_PREFIX = "\x1eloadwise-run-dir "  # then "started PATH" or "finished PATH" (a web UI session has several)
_RENDERED = re.compile(
    r"\[\s*(?P<elapsed>[\d.]+)s(?:/(?P<total>[\d.]+)s)?\] users\s+(?P<users>\d+) \|\s+(?P<rps>[\d.]+) req/s \| "
    r"p95\s+(?P<p95>[\d.]+ ms|-) \| failures (?P<failures>\d+) \([\d.]+%\) \| requests (?P<requests>\d+)"
)


@dataclass
class Status:
    elapsed_s: float
    total_s: float | None
    users: int
    rps: float
    p95_ms: float | None
    requests: int
    failures: int
    grouped_names: int = 0  # distinct endpoint names beyond the recorder's bound (ids in names?)
    # Open model (rate shapes): iterations started late and dropped so far, and those the
    # generator itself scheduled late (its CPU, not the target) once they are too many to be
    # pauses; None under a closed model.
    late: int | None = None
    dropped: int | None = None
    generator_late: int = 0

    def to_line(self) -> str:
        return STATUS_PREFIX + json.dumps(asdict(self))

    @classmethod
    def from_line(cls, line: str) -> Status | None:
        if not line.startswith(STATUS_PREFIX):
            return None
        try:
            return cls(**json.loads(line[len(STATUS_PREFIX) :]))
        except (ValueError, TypeError):
            return None

    @classmethod
    def from_rendered(cls, line: str) -> Status | None:
        """Read back a line `render` wrote (from a pod's log, say); None if it is not one."""
        match = _RENDERED.search(line)
        if match is None:
            return None
        p95 = match["p95"]
        return cls(float(match["elapsed"]), float(match["total"]) if match["total"] else None, int(match["users"]),
                   float(match["rps"]), None if p95 == "-" else float(p95.split()[0]), int(match["requests"]),
                   int(match["failures"]))  # fmt: skip

    def render(self) -> str:
        total = f"/{self.total_s:.0f}s" if self.total_s else ""
        p95 = f"{self.p95_ms:.0f} ms" if self.p95_ms is not None else "-"
        rate = 100.0 * self.failures / self.requests if self.requests else 0.0
        line = (
            f"[{self.elapsed_s:4.0f}s{total}] users {self.users:>4} | {self.rps:7.1f} req/s | "
            f"p95 {p95:>7} | failures {self.failures} ({rate:.1f}%) | requests {self.requests}"
        )
        if self.late is not None:
            line += f" | late {self.late} | dropped {self.dropped}"
        if self.generator_late:
            line += f" | GENERATOR BUSY: {self.generator_late} arrivals scheduled late by loadwise itself"
        if self.grouped_names:  # as Locust warns about too many names: they usually hold ids
            line += f" | {self.grouped_names} more names grouped as {OTHER_NAME!r}: give requests name="
        return line
