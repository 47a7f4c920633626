"""A Locust user's habits under `loadwise run`: the User class's own host, Locust's exit codes.

Real Locust runs against the demo target on loopback (bounded: 2 users, 3 s each).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.slow  # real load

CLASS_HOST = """
from locust import FastHttpUser, constant, task


class Shopper(FastHttpUser):
    host = "{host}"
    wait_time = constant(0.1)

    @task
    def health(self):
        self.client.get("/health", name="health")
"""


def _locustfile(tmp_path: Path, host: str) -> Path:
    path = tmp_path / "class_host.py"
    path.write_text(CLASS_HOST.format(host=host))
    return path


def test_the_user_class_host_is_the_default_target(tmp_path, target):
    result = run_cli("run", str(_locustfile(tmp_path, target.url)), "-u", "2", "-t", "3s", "--out", str(tmp_path))
    assert result.code == 0, result.stderr
    info = json.loads((Path(result.last_line) / "run.json").read_text())
    assert info["host"] == target.url and info["status"] == "completed"


def test_host_overrides_a_class_host_outside_the_allow_list(tmp_path, target):
    """The allow-list checks the host actually loaded: --host (loopback) replaces the class's."""
    locustfile = _locustfile(tmp_path, "http://shop.example.com")
    result = run_cli("run", str(locustfile), "--host", target.url, "-u", "2", "-t", "3s", "--out", str(tmp_path))
    assert result.code == 0, result.stderr
    assert json.loads((Path(result.last_line) / "run.json").read_text())["host"] == target.url
    refused = run_cli("run", str(locustfile), "-u", "2", "-t", "3s", "--out", str(tmp_path))
    assert refused.code == 2
    assert_one_line_error(refused, "shop.example.com")


def test_a_class_without_host_and_no_host_given_is_one_line(tmp_path):
    path = tmp_path / "no_host.py"
    path.write_text(CLASS_HOST.replace('    host = "{host}"\n', ""))
    result = run_cli("run", str(path), "-u", "1", "-t", "2s", "--out", str(tmp_path))
    assert result.code == 2
    assert_one_line_error(result, "no --host given", "Shopper")


OWN_SHAPE = """
from locust import FastHttpUser, LoadTestShape, constant, task


class Shopper(FastHttpUser):
    wait_time = constant(0.1)

    @task
    def health(self):
        self.client.get("/health", name="health")


class TwoSteps(LoadTestShape):
    def tick(self):
        run_time = self.get_run_time()
        if run_time < 2:
            return (2, 10)
        if run_time < 4:
            return (4, 10)
        return None
"""


def test_the_locustfiles_own_shape_runs_and_is_recorded(tmp_path, target):
    """No --shape: the locustfile's LoadTestShape runs (for as long as it says), and run.json
    names it with what it produced; --shape replaces it."""
    path = tmp_path / "own_shape.py"
    path.write_text(OWN_SHAPE)
    own = run_cli("run", str(path), "--host", target.url, "--out", str(tmp_path))
    assert own.code == 0, own.stderr
    info = json.loads((Path(own.last_line) / "run.json").read_text())
    assert info["status"] == "completed" and info["shape"] == "TwoSteps"
    assert info["shape_params"]["source"] == "locustfile" and info["shape_params"]["peak_users"] == 4
    assert 3.5 <= info["shape_params"]["duration_s"] <= 8
    replaced = run_cli("run", str(path), "--host", target.url, "--shape", "constant", "-u", "1", "-t", "2s",
                       "--out", str(tmp_path))  # fmt: skip
    assert replaced.code == 0, replaced.stderr
    info = json.loads((Path(replaced.last_line) / "run.json").read_text())
    assert info["shape"] == "constant" and info["shape_params"]["users"] == 1
