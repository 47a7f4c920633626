"""`loadwise run --expect-workers` with a `loadwise worker` started separately, and `--hold`:
what the Helm chart's master Job and worker Deployment run, here on loopback."""

import json
import subprocess
import sys
import time

from conftest import REPO

from analysis.rundir import RunDir
from loadwise.handoff import DONE_FILE, FETCHED_FILE
from loadwise.net import free_port


def _cli(*args):
    return subprocess.Popen([sys.executable, "-m", "loadwise", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_a_master_with_a_separate_worker_holds_its_run_until_fetched(target, tmp_path):
    port = free_port()
    master = _cli("run", "smoke", "--host", target.url, "--users", "4", "--duration", "4s", "--interval", "1",
                  "--expect-workers", "1", "--master-port", str(port), "--out", str(tmp_path), "--hold", "60s")  # fmt: skip
    worker = _cli("worker", "smoke", "--master-host", "127.0.0.1", "--master-port", str(port), "--interval", "1")
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / DONE_FILE).exists() and time.monotonic() < deadline and master.poll() is None:
            time.sleep(0.2)
        done = json.loads((tmp_path / DONE_FILE).read_text())
        assert done["status"] == "completed" and done["exit_code"] == 0
        time.sleep(1.5)
        assert master.poll() is None  # held for the fetch
        (tmp_path / FETCHED_FILE).touch()
        out, err = master.communicate(timeout=30)
        assert master.returncode == 0, err
        assert worker.wait(timeout=30) == 0
    finally:
        for proc in (master, worker):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    run = RunDir(tmp_path / done["run"])
    assert out.strip().splitlines()[-1] == str(run.path)  # still the run directory, as without --hold
    assert f'loadwise: run finished {{"run": "{done["run"]}"' in err
    info, summary = run.read_info(), run.read_summary()
    assert info.status == "completed" and info.workers == 1
    assert summary["overall"]["requests"] > 0 and summary["overall"]["failures"] == 0
