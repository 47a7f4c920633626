"""The live terminal line: the Locust process emits status records (loadwise.engine.stream), `loadwise run` shows them."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from loadwise.engine.stream import Status


class LiveDisplay:
    """One overwritten line on a terminal; a line every `every_s` seconds elsewhere (CI logs)."""

    def __init__(self, stream: TextIO = sys.stderr, every_s: float = 10.0):
        self.stream = stream
        self.tty = stream.isatty()
        self.every_s = every_s
        self._last = 0.0
        self._shown = False

    def show(self, status: Status) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + status.render())
            self._shown = True
        elif time.monotonic() - self._last >= self.every_s:
            self.stream.write(status.render() + "\n")
            self._last = time.monotonic()
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()
