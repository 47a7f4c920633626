"""Generator throughput: `loadwise run` against bare Locust on the same locustfile.

Two pairs, each measured A B A B in one run against one trivial loopback target (nginx
`return 200` when Debian's nginx is installed, else the demo target's /health), so the
load generator is the limit (a local run is pinned to core 0 and nginx to core 1):
  local:       `locust -f USER --headless`               vs `loadwise run USER`
  distributed: `locust -f USER --headless --processes 2` vs `loadwise run USER --workers 2`
Every variant writes Locust's own per-second history (`--csv PREFIX --csv-full-history`,
which `loadwise run` passes through to Locust), and the rate is computed the same way for
all: the steady-state request count per second, from 3 s after the start to the end. We print each round, the medians, and the ratio loadwise / bare per pair
(goal: >= 0.95 for both).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import locust  # noqa: F401  (gevent patches first, as in every Locust process)

from loadwise.run.net import free_port

HERE = Path(__file__).resolve().parent
USER_FILE = HERE / "bench_user.py"
GOAL = 0.95


def _rate(prefix: Path) -> float:
    """Steady-state requests/s from Locust's own per-second history (--csv-full-history):
    the aggregated count between 3 s after the first row and the last row, so start-up,
    ramp and shutdown weigh on neither variant."""
    rows = []
    with open(f"{prefix}_stats_history.csv", newline="") as handle:
        for r in csv.DictReader(handle):
            try:  # a row Locust writes while it shuts down can be torn: skip what does not parse
                if r["Name"] == "Aggregated":
                    rows.append((int(r["Timestamp"]), int(float(r["Total Request Count"]))))
            except (TypeError, ValueError):
                continue
    steady = [(t, n) for t, n in rows if t >= rows[0][0] + 3]
    (t0, n0), (t1, n1) = steady[0], steady[-1]
    return (n1 - n0) / (t1 - t0)


def _pinned(args: list[str], processes: int) -> list[str]:
    """One local Locust process on core 0 (the target is on core 1), as bare Locust and loadwise
    alike; distributed runs share both cores (two workers and the target cannot be separated)."""
    if processes or not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
        return args
    return ["taskset", "-c", "0", *args]


def one_run(host: str, variant: str, processes: int, seconds: int, users: int, workdir: Path) -> float:
    common = ["-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--exit-code-on-error", "0"]
    prefix = workdir / f"{variant}-{processes}-{time.monotonic_ns()}"
    history = ["--csv", str(prefix), "--csv-full-history"]
    if variant == "bare":
        args = [sys.executable, "-m", "locust", "-f", str(USER_FILE), "--headless", "--only-summary", "--host", host, *common, *history]
        args += ["--processes", str(processes)] if processes else []
        out = subprocess.run(_pinned(args, processes), capture_output=True, text=True, timeout=seconds + 120)
        if out.returncode != 0:
            raise SystemExit(f"bench: bare locust failed: {out.stderr.strip().splitlines()[-1:]}")
        return _rate(prefix)
    args = [sys.executable, "-m", "loadwise", "run", str(USER_FILE), "--host", host, "--out", str(workdir), "--no-report",
            "--shape", "constant", *common, "--workers", str(processes), *history]  # fmt: skip
    out = subprocess.run(_pinned(args, processes), capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise SystemExit(f"bench: loadwise run failed: {out.stderr.strip().splitlines()[-1:]}")
    return _rate(prefix)


class _Target:
    """nginx with `return 200` on a free loopback port (no access log), or the demo target."""

    def __enter__(self) -> _Target:
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        self.dir = Path(tempfile.mkdtemp(prefix="loadwise-bench-"))
        if nginx:
            port = free_port()
            temp = " ".join(f"{k}_temp_path {self.dir / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            (self.dir / "nginx.conf").write_text(
                f"worker_processes 1; daemon off; pid {self.dir / 'nginx.pid'}; error_log {self.dir / 'error.log'};\n"
                f"events {{ worker_connections 1024; }}\nhttp {{ {temp} access_log off; keepalive_requests 10000000;\n"
                f"  server {{ listen 127.0.0.1:{port}; location / {{ return 200 'ok'; }} }} }}\n")  # fmt: skip
            pin = ["taskset", "-c", "1"] if shutil.which("taskset") and (os.cpu_count() or 1) >= 2 else []
            self.proc = subprocess.Popen([*pin, nginx, "-c", str(self.dir / "nginx.conf"), "-p", str(self.dir), "-e", str(self.dir / "error.log")],
                                         stderr=subprocess.DEVNULL)  # fmt: skip
            self.url, self.what, self.demo = f"http://127.0.0.1:{port}", "nginx return 200", None
            time.sleep(0.5)
        else:
            from loadwise.run.demo_target import DemoTarget

            self.proc, self.demo = None, DemoTarget().__enter__()
            self.url, self.what = self.demo.url, "the demo target's /health (nginx not installed: the target may be the limit)"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        if self.demo is not None:
            self.demo.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--only", choices=["local", "distributed"], help="measure one pair only")
    opts = parser.parse_args()
    with _Target() as target, tempfile.TemporaryDirectory() as tmp:
        print(f"generator throughput: {opts.rounds} rounds (A B A B) x {opts.seconds}s, {opts.users} users, {target.what}")
        for processes, label in ((0, "local (one process)"), (2, "distributed (2 workers)")):
            if opts.only and opts.only != ("local" if processes == 0 else "distributed"):
                continue
            rates: dict[str, list[float]] = {"bare": [], "loadwise": []}
            for n in range(opts.rounds):
                for variant in ("bare", "loadwise"):
                    rate = one_run(target.url, variant, processes, opts.seconds, opts.users, Path(tmp))
                    rates[variant].append(rate)
                    print(f"  {label:<24} round {n + 1} {variant:<8} {rate:9.1f} req/s", flush=True)
            bare, ours = statistics.median(rates["bare"]), statistics.median(rates["loadwise"])
            ratio = ours / bare
            print(f"{label}: median bare Locust {bare:.1f} req/s, loadwise run {ours:.1f} req/s; "
                  f"ratio {ratio:.3f} (goal >= {GOAL}: {'met' if ratio >= GOAL else 'NOT met'})", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
