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

from loadwise.run.net import free_port


def require(what: str, found: bool) -> None:
    if found:
        return
    message = f"{what} is not installed (tests/install-services.sh installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Debian's promtool (package prometheus) with ARGS; fails in CI, skips elsewhere, when missing."""
    found = shutil.which("promtool")
    require("promtool (Debian package prometheus)", found is not None)
    return subprocess.run([str(found), *args], capture_output=True, text=True, timeout=30)


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


def terminate(proc: subprocess.Popen[bytes] | None, timeout_s: float = 15) -> None:
    """SIGTERM a process this test started, SIGKILL if it is still there `timeout_s` later."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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

    @property
    def log(self) -> Path:
        """The server's log (pg_ctl -l): what log_min_duration_statement and auto_explain write."""
        return self.dir / "log"

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


class Prometheus:
    """The Debian `prometheus` binary with a temporary config and storage on 127.0.0.1:PORT."""

    def __init__(self, scrape_configs: list[dict], scrape_interval: str = "1s") -> None:
        require("Prometheus (prometheus)", shutil.which("prometheus") is not None)
        import yaml

        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="loadwise-prom-"))
        config = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
                  "scrape_configs": scrape_configs}
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        import urllib.request

        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("prometheus did not become ready") from None
                time.sleep(0.1)

    def query(self, expr: str) -> list[dict]:
        import json
        import urllib.parse
        import urllib.request

        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())["data"]["result"]

    def wait_for(self, expr: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.query(expr):
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus: {expr} stayed empty for {timeout_s:.0f}s")
            time.sleep(0.5)

    def metric_names(self) -> set[str]:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/api/v1/label/__name__/values", timeout=10) as response:
            return set(json.loads(response.read())["data"])

    def stop(self) -> None:
        terminate(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class Nginx:
    """Debian's nginx (package nginx-light) with a temporary config, logs and temp paths, on
    127.0.0.1:PORT. Every path answers 200 except /fail (500). Its access log, one
    `METHOD URI STATUS` line per request, is the server's own count of what it served."""

    def __init__(self, host: str = "127.0.0.1", netns: str | None = None) -> None:
        """`netns`: start it inside that network namespace (listening on `host` there)."""
        self.binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        require("nginx (Debian package nginx-light)", self.binary is not None)
        self.host, self.netns = host, netns
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="loadwise-nginx-"))
        temp = "\n".join(f"  {kind}_temp_path {self.dir / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.dir / "nginx.conf").write_text(f"""
worker_processes 1;
daemon off;
pid {self.dir / 'nginx.pid'};
error_log {self.dir / 'error.log'} warn;
events {{ worker_connections 1024; }}
http {{
{temp}
  log_format counts '$request_method $uri $status';
  access_log {self.access_log} counts;
  keepalive_requests 1000000;
  server {{
    listen {self.host}:{self.port};
    location /fail {{ return 500 "failed\\n"; }}
    location / {{ return 200 "ok\\n"; }}
  }}
}}
""")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.dir / "access.log"

    def start(self) -> Nginx:
        import socket

        assert self.binary is not None
        inside = ["ip", "netns", "exec", self.netns] if self.netns else []  # `ip netns exec` execs: the PID is nginx's
        self.proc = subprocess.Popen([*inside, self.binary, "-c", str(self.dir / "nginx.conf"), "-p", str(self.dir), "-e", str(self.dir / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 15
        while True:
            try:
                if self.netns:  # reachable only from inside its namespace
                    probe = f"import socket; socket.create_connection(({self.host!r}, {self.port}), timeout=1).close()"
                    subprocess.run([*inside, "python3", "-c", probe], check=True, capture_output=True, timeout=10)
                else:
                    socket.create_connection((self.host, self.port), timeout=1).close()
                return self
            except (OSError, subprocess.CalledProcessError):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"nginx did not start: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start listening") from None
                time.sleep(0.05)

    def served(self) -> dict[tuple[str, str], int]:
        """(method, path) -> requests in the access log so far."""
        counts: dict[tuple[str, str], int] = {}
        for line in self.access_log.read_text().splitlines():
            method, uri, _status = line.split(" ")
            counts[(method, uri)] = counts.get((method, uri), 0) + 1
        return counts

    def clear(self) -> None:
        self.access_log.write_text("")  # nginx appends (O_APPEND): the next line lands at the start

    def stop(self) -> None:
        terminate(self.proc)  # SIGTERM: nginx's fast shutdown; its worker exits with it
        shutil.rmtree(self.dir, ignore_errors=True)
