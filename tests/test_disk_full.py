"""A full disk under the run directory: a real run on a tiny tmpfs (root only, as in CI).

The run must end with a true status (failed, saying why) and no traceback, leave no
temporary files, and stay reportable."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli
from services import require

from loadwise.analysis.rundir import RunDir


@pytest.fixture
def tiny_disk(tmp_path) -> Iterator[Path]:
    mount = tmp_path / "full"
    mount.mkdir()
    can = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(mount)],
                                               capture_output=True).returncode == 0  # fmt: skip
    require("a 24 KiB tmpfs (mount as root)", can)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_ends_the_run_failed_with_its_reason(target, tiny_disk, tmp_path):
    result = run_cli("run", "browse", "--host", target.url, "--users", "20", "--duration", "8s", "--interval", "1",
                     "--out", str(tiny_disk / "runs"), timeout=120)  # fmt: skip
    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "status: failed (the run directory could not be written: No space left on device)" in result.stdout
    run_dir = Path(result.last_line)
    info = RunDir(run_dir).read_info()
    assert info.status == "failed" and "No space left on device" in (info.status_reason or "")
    assert info.ended_at is not None
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []  # no half-written temp files
    report = run_cli("report", str(run_dir), "-o", str(tmp_path / "report.html"))
    assert report.code == 0, report.stderr
    assert "could not be written" in (tmp_path / "report.html").read_text()
