"""Start and stop the demo target (`python -m loadwise.demo`) as a child process on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from loadwise.run.net import free_port
from loadwise.errors import LoadwiseError


class TargetError(LoadwiseError, RuntimeError):
    pass


class DemoTarget:
    """`with DemoTarget(workers=2) as target: ... target.url ...`; stopped by its PID on exit."""

    def __init__(self, port: int | None = None, workers: int = 1, rows: int = 20000, extra_args: list[str] | None = None):
        self.port = port or free_port()
        self.workers = workers
        self.rows = rows
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="loadwise-demo-target-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> DemoTarget:
        args = [sys.executable, "-m", "loadwise.demo", "--port", str(self.port), "--workers", str(self.workers)]
        args += ["--rows", str(self.rows), *self.extra_args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TargetError(f"demo target exited with code {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        raise TargetError(f"demo target did not answer on {self.url} within {timeout_s:.0f}s")

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return response.read().decode("utf-8")

    def log_tail(self) -> str:
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the target and its workers only
            self.proc.wait()

    def __enter__(self) -> DemoTarget:
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)
