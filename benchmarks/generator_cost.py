"""Generator cost: `loadwise run` against bare Locust on the same locustfile, in one run.

One trivial loopback target (nginx `return 200`, pinned to core 1; its stub_status counts
every request it served: the same count for every variant) and, A B A B, for each pair:
  1 process:  `locust -f USER --headless`               vs `loadwise run USER` (both pinned to core 0)
  2 workers:  `locust -f USER --headless --processes 2` vs `loadwise run USER --workers 2`
in two ways:
  CPU per request: at a fixed rate below saturation (closed model: each user paced by
    constant_throughput; open model: loadwise's `--shape constant-rate` against bare Locust's
    users sending the same requests evenly spaced, as uniform arrivals are), the user + system
    CPU of every process of the variant (read from /proc: bare Locust and its workers;
    `loadwise run`, its master and workers) over a steady window, divided by the requests the
    target served in that window;
  saturated rate: wait_time 0, requests the target served per second over the steady window.
The window leaves out the start (start-up, ramp) and the end (shutdown, the run's summary).
Each figure is printed per round, then the medians and loadwise / bare (goal >= 0.97).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import locust  # noqa: F401  (gevent patches first, as in every Locust process)
import psutil

from loadwise.run.net import free_port

HERE = Path(__file__).resolve().parent
USER_FILE = HERE / "bench_user.py"
GOAL = 0.97
USERS = 20
WARMUP_S = 5.0  # from the start: Locust's start-up, the ramp, the first interval closed
TAIL_S = 2.0  # before the planned end


def _rate(prefix: Path) -> float:
    """Steady-state requests/s from Locust's own per-second history (--csv-full-history):
    the aggregated count between 3 s after the first row and the last row."""
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


class _Target:
    """nginx with `return 200` on a free loopback port (no access log; stub_status counts), or the demo target."""

    def __enter__(self) -> _Target:
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        self.dir = Path(tempfile.mkdtemp(prefix="loadwise-bench-"))
        if nginx:
            port = free_port()
            temp = " ".join(f"{k}_temp_path {self.dir / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            (self.dir / "nginx.conf").write_text(
                f"worker_processes 1; daemon off; pid {self.dir / 'nginx.pid'}; error_log {self.dir / 'error.log'};\n"
                f"events {{ worker_connections 1024; }}\nhttp {{ {temp} access_log off; keepalive_requests 10000000;\n"
                f"  server {{ listen 127.0.0.1:{port}; location = /nginx_status {{ stub_status; }}\n"
                f"    location / {{ return 200 'ok'; }} }} }}\n")  # fmt: skip
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

    def served(self) -> int | None:
        """Requests nginx has served so far (stub_status), None without nginx."""
        if self.demo is not None:
            return None
        with urllib.request.urlopen(f"{self.url}/nginx_status", timeout=5) as answer:
            text = answer.read().decode()
        return int(re.search(r"\n\s*\d+\s+\d+\s+(\d+)", text).group(1))  # type: ignore[union-attr]

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        if self.demo is not None:
            self.demo.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)


def _cpu_s(root: psutil.Process) -> dict[int, float]:
    """User + system CPU seconds of `root` and every process below it, by PID."""
    out = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            out[proc.pid] = times.user + times.system
        except psutil.Error:  # gone between the listing and the reading
            continue
    return out


def command(host: str, variant: str, processes: int, model: str, rate: float, seconds: float, workdir: Path) -> list[str]:
    """The command line of one variant: bare Locust or `loadwise run`; closed or open model."""
    common = ["-u", str(USERS), "-r", str(USERS), "-t", f"{seconds:g}s", "--host", host]
    if variant == "bare":
        args = [sys.executable, "-m", "locust", "-f", str(USER_FILE), "--headless", "--only-summary", *common]
        return _pinned(args + (["--processes", str(processes)] if processes else []), processes)
    shape = ["--shape", "constant-rate", "--rate", f"{rate:g}"] if model == "open" else ["--shape", "constant"]
    args = [sys.executable, "-m", "loadwise", "run", str(USER_FILE), "--out", str(workdir), "--no-report",
            "--exit-code-on-error", "0", *common, *shape, "--workers", str(processes)]  # fmt: skip
    return _pinned(args, processes)


def measure(target: _Target, argv: list[str], seconds: float, env: dict[str, str]) -> tuple[float, float]:
    """Run `argv`; over its steady window: CPU microseconds per request served, and requests/s."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        root = psutil.Process(proc.pid)
        time.sleep(WARMUP_S)
        cpu0, served0, t0 = _cpu_s(root), target.served(), time.monotonic()
        time.sleep(seconds - WARMUP_S - TAIL_S)
        cpu1, served1, t1 = _cpu_s(root), target.served(), time.monotonic()
        _, err = proc.communicate(timeout=seconds + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode not in (0, None):
        raise SystemExit(f"bench: {' '.join(argv[:6])} ... failed: {err.strip().splitlines()[-1:]}")
    used = sum(cpu1[pid] - cpu0.get(pid, 0.0) for pid in cpu1)
    served = (served1 or 0) - (served0 or 0)
    if served <= 0:
        raise SystemExit("bench: the target counted no request (nginx is needed for this benchmark)")
    return used / served * 1e6, served / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="A B A B rounds per figure (default 3)")
    parser.add_argument("--seconds", type=float, default=17, help="length of each run (default 17: a 10 s window)")
    parser.add_argument("--rate", type=float, default=4000, help="total requests/s of the CPU-per-request runs (default 4000)")
    parser.add_argument("--only", choices=["cpu", "saturated"], help="measure one figure only")
    opts = parser.parse_args()
    cases = [("cpu", processes, model) for processes in (0, 2) for model in ("closed", "open")]
    cases += [("saturated", processes, "closed") for processes in (0, 2)]
    with _Target() as target, tempfile.TemporaryDirectory() as tmp:
        if target.served() is None:
            raise SystemExit("bench: generator cost needs nginx (apt-get install nginx-light): its stub_status counts what it served")
        print(f"generator cost: {opts.rounds} rounds A B A B, {opts.seconds:g} s runs ({opts.seconds - WARMUP_S - TAIL_S:g} s "
              f"steady window), {USERS} users, {target.what}; CPU per request at {opts.rate:g} req/s")  # fmt: skip
        table = []
        for figure, processes, model in cases:
            if opts.only and opts.only != figure:
                continue
            if figure == "saturated":
                pacing = {"BENCH_USER_RATE": "0"}
            elif model == "closed":
                pacing = {"BENCH_USER_RATE": f"{opts.rate / USERS:g}"}
            else:  # bare Locust's counterpart of uniform arrivals: the same requests, evenly spaced
                pacing = {"BENCH_USER_RATE": "0", "BENCH_EVEN_RATE": f"{opts.rate / max(processes, 1):g}"}
            label = f"{'1 process' if not processes else f'{processes} workers'}, {model}"
            results: dict[str, list[tuple[float, float]]] = {"bare": [], "loadwise": []}
            for n in range(opts.rounds):
                for variant in ("bare", "loadwise"):
                    env = {**os.environ, **pacing}
                    if variant == "loadwise" and model == "open":  # the rate shape paces the iterations
                        env["BENCH_USER_RATE"], env["BENCH_EVEN_RATE"] = "0", "0"
                    argv = command(target.url, variant, processes, model, opts.rate, opts.seconds, Path(tmp))
                    cpu_us, rps = measure(target, argv, opts.seconds, env)
                    results[variant].append((cpu_us, rps))
                    print(f"  {figure:<9} {label:<20} round {n + 1} {variant:<8} {cpu_us:7.1f} us/request {rps:9.0f} req/s",
                          flush=True)  # fmt: skip
            table.append((figure, label, results))
        print("\nCPU microseconds per request (median; lower is better) and saturated rate (median req/s):")
        print(f"  {'figure':<9} {'variant':<20} {'bare Locust':>12} {'loadwise':>10}  ratio bare/loadwise (goal >= {GOAL})")
        for figure, label, results in table:
            index = 0 if figure == "cpu" else 1
            bare = statistics.median(r[index] for r in results["bare"])
            ours = statistics.median(r[index] for r in results["loadwise"])
            ratio = bare / ours if figure == "cpu" else ours / bare
            unit = "us" if figure == "cpu" else "/s"
            print(f"  {figure:<9} {label:<20} {bare:10.1f}{unit} {ours:8.1f}{unit}  {ratio:.3f} "
                  f"({'met' if ratio >= GOAL else 'NOT met'})", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
