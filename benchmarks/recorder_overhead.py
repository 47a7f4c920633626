"""Requests/s of a bare FastHttpUser versus the same user with the loadwise recorder attached.

Both variants run against the same demo target, alternating, several rounds, in one
process tree; we print medians and the ratio (the goal: the recorder keeps >= 90 % of the
bare rate) and the Locust process's CPU time per request, which is what the recorder adds
to.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import locust  # noqa: F401  (gevent patches first, as in every Locust process)

from loadwise.run.demo_target import DemoTarget

HERE = Path(__file__).resolve().parent
USER_FILE = HERE / "bench_user.py"
ENTRY = HERE.parent / "loadwise" / "locustfile.py"


def one_run(host: str, recorded: bool, seconds: int, users: int, workdir: Path) -> tuple[float, float]:
    """(requests per second, Locust CPU microseconds per request) of one run."""
    if recorded:
        files = ["-f", str(ENTRY), "--scenario", str(USER_FILE), "--run-dir", str(workdir / f"run{len(list(workdir.iterdir()))}")]
    else:
        files = ["-f", str(USER_FILE)]
    args = [sys.executable, "-m", "locust", *files, "--headless", "--only-summary", "--json", "--host", host,
            "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--exit-code-on-error", "0"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: locust failed ({'recorded' if recorded else 'bare'})")
    stats = json.loads(stdout[stdout.index("[") :])
    requests = sum(s["num_requests"] for s in stats)
    start = min(s["start_time"] for s in stats)
    end = max(s["last_request_timestamp"] for s in stats)
    cpu_us = (usage.ru_utime + usage.ru_stime) * 1e6
    return requests / (end - start), cpu_us / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--users", type=int, default=10)
    opts = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"bare": [], "recorded": []}
    with DemoTarget() as target, tempfile.TemporaryDirectory() as tmp:
        print(f"recorder overhead: {opts.rounds} rounds x {opts.seconds}s, {opts.users} users, GET /health on {target.url}")
        for n in range(opts.rounds):
            for variant in ("bare", "recorded"):
                rps, cpu = one_run(target.url, variant == "recorded", opts.seconds, opts.users, Path(tmp))
                results[variant].append((rps, cpu))
                print(f"  round {n + 1} {variant:<8} {rps:8.1f} req/s  {cpu:6.1f} us CPU/request", flush=True)
    bare_rps = statistics.median(r for r, _ in results["bare"])
    rec_rps = statistics.median(r for r, _ in results["recorded"])
    bare_cpu = statistics.median(c for _, c in results["bare"])
    rec_cpu = statistics.median(c for _, c in results["recorded"])
    ratio = rec_rps / bare_rps
    print(f"median req/s: bare {bare_rps:.1f}, recorded {rec_rps:.1f}; ratio {ratio:.3f} (goal >= 0.90: {'met' if ratio >= 0.9 else 'NOT met'})")
    print(f"median Locust CPU per request: bare {bare_cpu:.1f} us, recorded {rec_cpu:.1f} us; ratio {rec_cpu / bare_cpu:.3f}")


if __name__ == "__main__":
    main()
