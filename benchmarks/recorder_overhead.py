"""Generator throughput: `loadwise run` against bare Locust on the same locustfile.

Two pairs, each measured A B A B in one run against one trivial loopback target (nginx
`return 200` when Debian's nginx is installed, else the demo target's /health), so the
load generator is the limit:
  local:       `locust -f USER --headless`            vs `loadwise run USER`
  distributed: `locust -f USER --headless --processes 2` vs `loadwise run USER --workers 2`
Every variant prints Locust's own `--json` stats (`loadwise run ... -- --json` passes the flag
through, as loadwise's own `--json` is another thing; Locust's copy lands in the run's locust.log), and the rate is computed the same way for all:
requests / (last request - first start). We print each round, the medians, and the ratio
loadwise / bare per pair (goal: >= 0.95 for both).
"""

from __future__ import annotations

import argparse
import json
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


def _rate(stats_text: str) -> float:
    # The stats list is the only line that is just "[" (log lines start with "[<time>]").
    start_at = next(i for i, line in enumerate(stats_text.splitlines(keepends=True)) if line.strip() == "[")
    text = "".join(stats_text.splitlines(keepends=True)[start_at:])
    stats, _ = json.JSONDecoder().raw_decode(text)
    requests = sum(s["num_requests"] for s in stats)
    start = min(s["start_time"] for s in stats)
    end = max(s["last_request_timestamp"] for s in stats)
    return requests / (end - start)


def one_run(host: str, variant: str, processes: int, seconds: int, users: int, workdir: Path) -> float:
    common = ["-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--exit-code-on-error", "0"]
    if variant == "bare":
        args = [sys.executable, "-m", "locust", "-f", str(USER_FILE), "--headless", "--only-summary", "--json", "--host", host, *common]
        args += ["--processes", str(processes)] if processes else []
        out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120)
        if out.returncode != 0:
            raise SystemExit(f"bench: bare locust failed: {out.stderr.strip().splitlines()[-1:]}")
        return _rate(out.stdout)
    args = [sys.executable, "-m", "loadwise", "run", str(USER_FILE), "--host", host, "--out", str(workdir), "--no-report",
            "--shape", "constant", *common, "--workers", str(processes), "--", "--json"]  # fmt: skip
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise SystemExit(f"bench: loadwise run failed: {out.stderr.strip().splitlines()[-1:]}")
    run_dir = Path(out.stdout.strip().splitlines()[-1])
    return _rate((run_dir / "locust.log").read_text())


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
            self.proc = subprocess.Popen([nginx, "-c", str(self.dir / "nginx.conf"), "-p", str(self.dir), "-e", str(self.dir / "error.log")],
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--users", type=int, default=20)
    opts = parser.parse_args()
    with _Target() as target, tempfile.TemporaryDirectory() as tmp:
        print(f"generator throughput: {opts.rounds} rounds (A B A B) x {opts.seconds}s, {opts.users} users, {target.what}")
        for processes, label in ((0, "local (one process)"), (2, "distributed (2 workers)")):
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
