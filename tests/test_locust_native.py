"""A Locust user's habits under `loadwise run`: the host and the allow-list, a named shape
over the locustfile's own, the report at the end, the command line split between loadwise
and Locust. (An example-style locustfile with everything else runs against nginx in
test_locust_examples.py.)

The tests marked slow run real Locust against the demo target on loopback (bounded: a few
users, a few seconds each).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli


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


@pytest.mark.slow
def test_host_overrides_a_class_host_outside_the_allow_list(tmp_path, target):
    """The allow-list checks the host actually loaded: --host (loopback) replaces the class's."""
    locustfile = _locustfile(tmp_path, "http://shop.example.com")
    result = run_cli("run", str(locustfile), "--host", target.url, "-u", "2", "-t", "2s", "--out", str(tmp_path))
    assert result.code == 0, result.stderr
    assert json.loads((Path(result.last_line) / "run.json").read_text())["host"] == target.url
    refused = run_cli("run", str(locustfile), "-u", "2", "-t", "2s", "--out", str(tmp_path))
    assert refused.code == 2
    assert_one_line_error(refused, "shop.example.com")


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_named_shape_replaces_the_locustfiles_own(tmp_path, target):
    """--shape replaces the locustfile's LoadTestShape (which runs when no --shape is given:
    see test_locust_examples.py)."""
    path = tmp_path / "own_shape.py"
    path.write_text(OWN_SHAPE)
    replaced = run_cli("run", str(path), "--host", target.url, "--shape", "constant", "-u", "1", "-t", "2s",
                       "--out", str(tmp_path))  # fmt: skip
    assert replaced.code == 0, replaced.stderr
    info = json.loads((Path(replaced.last_line) / "run.json").read_text())
    assert info["shape"] == "constant" and info["shape_params"]["users"] == 1


@pytest.mark.slow
def test_the_report_is_rendered_at_the_end_of_the_run(tmp_path, target):
    """As Locust's --html: report.html in the run directory, and at --html FILE too; the time
    axis starts at 0; analyses not run yet are one line each, not empty sections."""
    copy = tmp_path / "copy.html"
    result = run_cli("run", "smoke", "--host", target.url, "-u", "2", "-t", "2s", "--html", str(copy),
                     "--out", str(tmp_path), report=True)  # fmt: skip
    assert result.code == 0, result.stderr
    page = (Path(result.last_line) / "report.html").read_text()
    assert copy.read_text() == page and f"report: {copy}" in result.stderr
    assert "Not analysed yet" in page and "<h2>Database indexes</h2>" not in page
    from loadwise.reports.data import load

    assert load(result.last_line).timeline.index.min() == 0.0
    quiet = run_cli("run", "smoke", "--host", target.url, "-u", "1", "-t", "2s", "--no-report", "--out", str(tmp_path))
    assert quiet.code == 0 and not (Path(quiet.last_line) / "report.html").exists()


@pytest.mark.parametrize(("argv", "ours", "theirs"), [
    (["browse", "--tags", "a", "b"], ["browse"], ["--tags", "a", "b"]),
    (["-f", "x.py", "--csv", "out", "MyUser", "-u", "3"], ["-f", "x.py", "-u", "3"], ["--csv", "out", "MyUser"]),
    (["x.py", "--only-summary", "MyUser", "--loglevel=DEBUG", "-t", "5s"], ["x.py", "-t", "5s"],
     ["--only-summary", "MyUser", "--loglevel=DEBUG"]),
    (["x.py", "--headless", "--run-time", "9s", "-H", "http://127.0.0.1:1"], ["x.py", "--headless", "--run-time", "9s",
     "-H", "http://127.0.0.1:1"], []),
    (["x.py", "--", "--anything", "goes"], ["x.py"], ["--anything", "goes"]),
])  # fmt: skip
def test_the_command_line_is_split_between_loadwise_and_locust(argv, ours, theirs):
    from loadwise.cli.run import split_locust_args

    assert split_locust_args(argv) == (ours, theirs)


@pytest.mark.parametrize(("option", "says"), [
    (["--master"], "--workers N"),
    (["--worker"], "loadwise worker"),
    (["--master-bind-port", "5999"], "--master-port"),
    (["--run-dir", "x"], "--out DIR"),
    (["--run-tag=a=b"], "--tag KEY=VALUE"),
])  # fmt: skip
def test_locust_options_loadwise_replaces_are_refused_with_what_to_use(tmp_path, cli_here, option, says):
    # Refused while the command line is read, before any process starts: the CLI in this process.
    result = cli_here("run", "smoke", "--host", "http://127.0.0.1:9", *option, "--out", str(tmp_path))
    assert result.code == 2
    assert_one_line_error(result, option[0].split("=")[0], says)
    assert not list(tmp_path.iterdir())  # nothing started


def test_locust_list_describes_the_locustfile_and_starts_no_run(tmp_path):
    path = _locustfile(tmp_path, "http://127.0.0.1:9")
    result = run_cli("run", "-f", str(path), "--list", "--out", str(tmp_path / "runs"))
    assert result.code == 0, result.stderr
    assert "Shopper" in result.stdout and not (tmp_path / "runs").exists()
