"""locust.log: what the Locust processes of a run print, redacted, capped and rotated."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from loadwise.analysis.redact import redact

LOG_FILE_BYTES = 10 * 2**20  # locust.log rotates at this size ...
LOG_BACKUPS = 2  # ... keeping locust.log.1 and locust.log.2: at most 30 MiB of log per run
WRITE_FAILED = "loadwise: cannot write to "  # how the Locust side reports a failed write (plugin.py)


class RunLog:
    """locust.log: what the Locust processes print, redacted line by line, capped and rotated.

    A locustfile may print tokens or headers, and a print loop can write gigabytes: every
    line goes through `redact`; when locust.log reaches `file_bytes` it becomes locust.log.1
    (locust.log.1 becomes .2, and so on up to `backups`; the oldest is deleted), so the
    newest output (the error that ended a run) is always kept and the run directory holds
    at most (backups + 1) x file_bytes of log. Written from several relay threads.
    """

    def __init__(self, path: Path, file_bytes: int = LOG_FILE_BYTES, backups: int = LOG_BACKUPS):
        self.path, self.file_bytes, self.backups = path, file_bytes, backups
        self.handle = open(path, "a", buffering=1, encoding="utf-8")
        self.written, self.rotations, self.dropped = 0, 0, 0
        self.lock = threading.Lock()
        self.write_problem: str | None = None  # the first "cannot write" the Locust side reported

    def write(self, line: str) -> None:
        text = redact(line)
        with self.lock:
            if self.write_problem is None and WRITE_FAILED in text:
                self.write_problem = text.split(WRITE_FAILED, 1)[1].strip()
            try:
                if self.written and self.written + len(text) > self.file_bytes:
                    self._rotate()
                self.handle.write(text)
                self.written += len(text)
            except OSError:  # a full disk: the line is lost, the run is not
                self.dropped += 1

    def _rotate(self) -> None:
        self.handle.close()
        for n in range(self.backups, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            newer = self.path.with_name(f"{self.path.name}.{n - 1}") if n > 1 else self.path
            if newer.exists():
                os.replace(newer, older)  # the one at .backups is overwritten: that output is gone
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        self.handle = open(self.path, "a", buffering=1, encoding="utf-8")
        self.written, self.rotations = 0, self.rotations + 1

    def close(self) -> None:
        with self.lock:
            try:
                if self.rotations > self.backups:
                    self.handle.write(f"[loadwise: locust.log was rotated {self.rotations} times at {_size(self.file_bytes)}; "
                                      f"the oldest output beyond {self.backups} rotated files was deleted]\n")  # fmt: skip
                if self.dropped:
                    self.handle.write(f"[loadwise: {self.dropped} lines could not be written to locust.log (a full disk)]\n")
                self.handle.close()
            except OSError:
                pass


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n} bytes"
