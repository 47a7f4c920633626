"""Open-model ceiling: the highest arrival rate one generator core sustains on schedule.

Against one trivial loopback target (nginx `return 200`, pinned to core 1; the generator to
core 0), per round:
  closed: `loadwise run bench_user.py --shape constant -u 20` (wait_time 0): its steady rate X;
  open:   `loadwise run bench_user.py --shape step-rate` up to 1.2 X in 8 equal steps; a step
          is sustained when fewer than 1 % of its iterations started more than 10 ms late (start
          lateness p99 under 10 ms), none was dropped and it achieved what it was offered.
The ratio is the highest sustained step's rate over X (goal: >= 0.9). Then the recorder's cost
per request with the second (service-time) histogram against one histogram, in-process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import locust  # noqa: F401, I001  (gevent patches first, as in every Locust process)

from benchmarks.generator_cost import USER_FILE, _pinned, _rate, _Target
from loadwise.analysis.rundir import RunDir, epoch_of
from loadwise.engine.recorder import Recorder

GOAL = 0.9
STEPS = 8  # step k offers (k / STEPS) x 1.2 x the closed-model rate


def _loadwise(args: list[str], seconds: float) -> Path:
    out = subprocess.run(_pinned([sys.executable, "-m", "loadwise", "run", str(USER_FILE), *args], 0),
                         capture_output=True, text=True, timeout=seconds + 120)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"bench: loadwise run failed: {out.stderr.strip().splitlines()[-1:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def closed_rate(host: str, seconds: int, workdir: Path) -> float:
    prefix = workdir / f"closed-{time.monotonic_ns()}"
    _loadwise(["--host", host, "--out", str(workdir), "--no-report", "--shape", "constant", "-u", "20", "-r", "20",
               "-t", f"{seconds}s", "--csv", str(prefix), "--csv-full-history"], seconds)  # fmt: skip
    return _rate(prefix)


def open_ceiling(host: str, closed: float, step_s: int, workdir: Path) -> tuple[float, float, list[str]]:
    """The highest sustained step's offered rate, the highest rate achieved, and one line per step.
    A small pool (10, at most 40): every user more lengthens the event loop's cycle, and with it
    the start lateness of arrivals released in it."""
    peak = closed * 1.2
    run = RunDir(_loadwise(["--host", host, "--out", str(workdir), "--no-report", "--shape", "step-rate",
                            "--rate", f"{peak:.0f}", "--shape-param", f"steps={STEPS}", "-u", "10", "--max-users", "40",
                            "-t", f"{step_s * STEPS}s", "--interval", "1"], step_s * STEPS))  # fmt: skip
    info, iterations, intervals = run.read_info(), run.read_iterations(), run.read_intervals()
    achieved = intervals.groupby("start")["requests"].sum()
    best, most, lines = 0.0, 0.0, []
    started_at = epoch_of(info.started_at)
    for k in range(STEPS):
        lo, hi = started_at + k * step_s + 2, started_at + (k + 1) * step_s  # 2 s for the pool to settle
        inside = iterations[[lo <= t.timestamp() and t.timestamp() + 1 <= hi for t in iterations["start"]]]
        if inside.empty:
            continue
        offered = peak * (k + 1) / STEPS
        started = int(inside["started"].sum())
        late = int(inside["late"].sum()) / max(started, 1)
        dropped = int(inside["dropped"].sum())
        got = float(achieved.reindex(inside["start"]).fillna(0).sum()) / len(inside)
        kept = late < 0.01 and dropped == 0 and got >= 0.99 * offered
        best = offered if kept else best
        most = max(most, got)
        lines.append(f"    step {k + 1}: offered {offered:8.0f}/s ({offered / closed:.2f} X), achieved {got:8.0f}/s, "
                     f"late {late:6.2%}, dropped {dropped}: {'sustained' if kept else 'not sustained'}")  # fmt: skip
    return best, most, lines


def recorder_cost(requests: int = 200_000, repeats: int = 5) -> tuple[float, float]:
    """Microseconds per request recorded (and settled, closed, encoded): one histogram, then two."""

    def once(open_model: bool) -> float:
        recorder = Recorder(1.0)
        if open_model:
            recorder.measure_intended()
        started = time.perf_counter()
        for i in range(requests):
            recorder.record("GET", "/health", 0.5 + (i % 97) * 0.01, 2, None, 1000.0 + i / 20_000, 0.3)
        recorder.close(before=float("inf"))
        return (time.perf_counter() - started) / requests * 1e6

    one = statistics.median(once(False) for _ in range(repeats))
    two = statistics.median(once(True) for _ in range(repeats))
    return one, two


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15, help="length of the closed-model run")
    parser.add_argument("--step-seconds", type=int, default=8, help="length of each rate step")
    opts = parser.parse_args()
    ratios, achieved = [], []
    with _Target() as target, tempfile.TemporaryDirectory() as tmp:
        print(f"open-model ceiling on one generator core: {opts.rounds} rounds, {target.what}")
        for n in range(opts.rounds):
            closed = closed_rate(target.url, opts.seconds, Path(tmp))
            best, most, lines = open_ceiling(target.url, closed, opts.step_seconds, Path(tmp))
            ratios.append(best / closed)
            achieved.append(most / closed)
            print(f"  round {n + 1}: closed model {closed:.0f} req/s; highest rate on schedule {best:.0f}/s (ratio "
                  f"{best / closed:.2f}); highest achieved {most:.0f}/s (ratio {most / closed:.2f})")
            print("\n".join(lines), flush=True)
    ratio = statistics.median(ratios)
    print(f"open-model ceiling: median ratio {ratio:.2f} of the closed-model rate on schedule (goal >= {GOAL}: "
          f"{'met' if ratio >= GOAL else 'NOT met'}); median highest achieved {statistics.median(achieved):.2f}")
    one, two = recorder_cost()
    print(f"recorder cost per request: one histogram {one:.2f} us, with the service-time histogram {two:.2f} us "
          f"(ratio {two / one:.2f}); median of 5 runs of 200,000 requests")


if __name__ == "__main__":
    main()
