"""Throwaway PostgreSQL and Redis servers for tests: temp dirs, free loopback ports, stopped by PID.

Nothing here touches the machine's own services. A missing server binary skips the test,
except under CI=true, where it fails it: CI must never pass by not testing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from loadwise.net import free_port


def require(what: str, found: bool) -> None:
    if found:
        return
    message = f"{what} is not installed (tests/install-services.sh installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _wait_pid_gone(pid: int, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except OSError:
            return
        if state == "Z":  # exited; nothing reaps orphans here
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


class Postgres:
    """initdb in a temp dir, pg_stat_statements preloaded, HypoPG available, on 127.0.0.1:PORT."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        require("PostgreSQL (initdb)", bool(bins) or shutil.which("initdb") is not None)
        self.bin = Path(bins[-1]).parent if bins else Path(shutil.which("initdb") or "").parent
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="loadwise-pg-"))
        self.pid: int | None = None
        # initdb refuses to run as root: run the server as the postgres user then.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            os.chown(self.dir, pwd.getpwnam("postgres").pw_uid, -1)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> Postgres:
        data = self.dir / "data"
        run = lambda *args: subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)  # noqa: E731
        run(str(self.bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c shared_preload_libraries=pg_stat_statements -c fsync=off")
        run(str(self.bin / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")
        self.pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        return self

    def stop(self) -> None:
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGINT)  # fast shutdown of the server we started
                _wait_pid_gone(self.pid)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    """redis-server on 127.0.0.1:PORT with no persistence."""

    def __init__(self) -> None:
        require("Redis (redis-server)", shutil.which("redis-server") is not None)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
