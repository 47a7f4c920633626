"""Memory over time: RSS of `loadwise run --workers 2` against bare `locust --processes 2`.

The same scenario (browse) and user count drive the same demo target, one variant after
the other. Every few seconds the resident set of each process is read from /proc: the
master and the workers (and, for loadwise, the `loadwise run` parent that relays logs and
scrapes metrics). Printed per process: RSS at start-up (after the first samples), at the
end, and the slope after the warm-up by least squares, in MB per hour. Goals: every slope
flat within noise (about what bare Locust shows), start-up RSS at most 1.5x Locust's.
`--minutes 10` is the default; shorter runs are for a quick look only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from loadwise.run.demo_target import DemoTarget

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "scenarios" / "browse.py"
WARMUP_FRACTION = 0.25  # the first quarter (imports, spawning, allocator warm-up) is left out of the slope


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _roles(root: int, variant: str) -> dict[str, int]:
    """Role name -> PID, for the processes of one variant's tree."""
    if variant == "locust":  # the master forks its workers
        workers = sorted(_children(root))
        return {"master": root} | {f"worker{i + 1}": pid for i, pid in enumerate(workers)}
    roles = {"runner": root}
    workers = [pid for pid in _children(root) if "--worker" in _cmdline(pid)]
    masters = [pid for pid in _children(root) if "--master" in _cmdline(pid)]
    roles |= {"master": masters[0]} if masters else {}
    return roles | {f"worker{i + 1}": pid for i, pid in enumerate(sorted(workers))}


def soak(variant: str, host: str, seconds: int, users: int, sample_s: float, out: Path) -> dict[str, list[tuple[float, float]]]:
    if variant == "locust":
        args = [sys.executable, "-m", "locust", "-f", str(SCENARIO), "--headless", "--processes", "2",
                "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", host, "--only-summary",
                "--exit-code-on-error", "0"]  # fmt: skip
    else:
        args = [sys.executable, "-m", "loadwise", "run", "browse", "--host", host, "--workers", "2",
                "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=out)
    samples: dict[str, list[tuple[float, float]]] = {}
    started = time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - started < seconds + 120:
            now = time.monotonic() - started
            # Before the load runs, the tree is still starting: sample only once it has workers.
            for role, pid in _roles(proc.pid, variant).items():
                rss = _rss_mb(pid)
                if rss is not None and now > 5:
                    samples.setdefault(role, []).append((now, rss))
            time.sleep(sample_s)
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=60)
    # Only the samples taken while the load ran: shutdown frees memory and would bend the slope.
    return {role: [(t, r) for t, r in points if t <= seconds] for role, points in samples.items()}


def _slope_mb_per_hour(points: list[tuple[float, float]]) -> float:
    t = np.array([p[0] for p in points])
    rss = np.array([p[1] for p in points])
    keep = t >= t[0] + WARMUP_FRACTION * (t[-1] - t[0])
    if keep.sum() < 3:
        return float("nan")
    return float(np.polyfit(t[keep], rss[keep], 1)[0] * 3600)


def _startup_mb(points: list[tuple[float, float]]) -> float:
    return float(np.median([r for _, r in points[:3]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    opts = parser.parse_args()
    seconds = int(opts.minutes * 60)
    results = {}
    with DemoTarget() as target, tempfile.TemporaryDirectory() as tmp:
        print(f"soak: browse, {opts.users} users, 2 workers, {opts.minutes:g} min per variant against {target.url}", flush=True)
        for variant in ("locust", "loadwise"):
            results[variant] = soak(variant, target.url, seconds, opts.users, opts.sample, Path(tmp))
            for role, points in sorted(results[variant].items()):
                print(f"  {variant:<8} {role:<8} start-up {_startup_mb(points):6.1f} MB, end {points[-1][1]:6.1f} MB, "
                      f"slope after warm-up {_slope_mb_per_hour(points):+7.1f} MB/h ({len(points)} samples)", flush=True)  # fmt: skip
    bare, ours = results["locust"], results["loadwise"]
    if "master" in bare and "master" in ours:
        ratio = _startup_mb(ours["master"]) / _startup_mb(bare["master"])
        print(f"start-up RSS of the master: loadwise / locust = {ratio:.2f} (goal <= 1.5: {'met' if ratio <= 1.5 else 'NOT met'})")
    workers_bare = [_startup_mb(p) for r, p in bare.items() if r.startswith("worker")]
    workers_ours = [_startup_mb(p) for r, p in ours.items() if r.startswith("worker")]
    if workers_bare and workers_ours:
        ratio = float(np.median(workers_ours) / np.median(workers_bare))
        print(f"start-up RSS of a worker: loadwise / locust = {ratio:.2f} (goal <= 1.5: {'met' if ratio <= 1.5 else 'NOT met'})")
    noise = max(abs(_slope_mb_per_hour(p)) for p in bare.values())
    worst = max(ours.items(), key=lambda item: abs(_slope_mb_per_hour(item[1])))
    print(f"steepest loadwise slope: {worst[0]} {_slope_mb_per_hour(worst[1]):+.1f} MB/h; bare Locust's steepest "
          f"{noise:.1f} MB/h (goal: within 2x that, or under 5 MB/h)")  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
