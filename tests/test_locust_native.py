"""A Locust user's habits under `loadwise run`: Locust's options and locust.conf, the User
class's own host, the locustfile's own shape, task exceptions, the report at the end.

The tests marked slow run real Locust against the demo target on loopback (bounded: a few
users, a few seconds each).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
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
def test_the_user_class_host_is_the_default_target(tmp_path, target):
    result = run_cli("run", str(_locustfile(tmp_path, target.url)), "-u", "2", "-t", "3s", "--out", str(tmp_path))
    assert result.code == 0, result.stderr
    info = json.loads((Path(result.last_line) / "run.json").read_text())
    assert info["host"] == target.url and info["status"] == "completed"


@pytest.mark.slow
def test_host_overrides_a_class_host_outside_the_allow_list(tmp_path, target):
    """The allow-list checks the host actually loaded: --host (loopback) replaces the class's."""
    locustfile = _locustfile(tmp_path, "http://shop.example.com")
    result = run_cli("run", str(locustfile), "--host", target.url, "-u", "2", "-t", "3s", "--out", str(tmp_path))
    assert result.code == 0, result.stderr
    assert json.loads((Path(result.last_line) / "run.json").read_text())["host"] == target.url
    refused = run_cli("run", str(locustfile), "-u", "2", "-t", "3s", "--out", str(tmp_path))
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


RAISING = """
from locust import FastHttpUser, constant, task


class Checkout(FastHttpUser):
    wait_time = constant(0.1)

    @task
    def browse(self):
        self.client.get("/health", name="health")

    @task
    def pay(self):
        cart = {}
        cart["total"] += 1  # KeyError: a bug in the locustfile, not a failed request
"""


@pytest.mark.slow
def test_task_exceptions_land_in_the_run_directory_and_the_report(tmp_path, target):
    """Two workers: the master gathers each worker's exceptions (a local run keeps its own)."""
    workers = 2
    path = tmp_path / "raising.py"
    path.write_text(RAISING)
    result = run_cli("run", str(path), "--host", target.url, "-u", "2", "-t", "3s", "--workers", str(workers),
                     "--out", str(tmp_path))  # fmt: skip
    assert result.code == 0, result.stderr  # no request failed: exceptions are not failures, as in Locust
    exceptions = pd.read_csv(Path(result.last_line) / "exceptions.csv")
    assert len(exceptions) == 1 and exceptions["count"].iloc[0] > 3
    traceback = exceptions["traceback"].iloc[0]
    assert exceptions["message"].iloc[0] == "'total'"  # Locust's message is str(exception)
    assert ", in pay" in traceback and 'cart["total"] += 1' in traceback  # Locust's stack, where it was raised
    report = run_cli("report", result.last_line)
    assert "Exceptions in tasks" in Path(report.last_line).read_text()


@pytest.mark.slow
def test_the_report_is_rendered_at_the_end_of_the_run(tmp_path, target):
    """As Locust's --html: report.html in the run directory, and at --html FILE too; the time
    axis starts at 0; analyses not run yet are one line each, not empty sections."""
    copy = tmp_path / "copy.html"
    result = run_cli("run", "smoke", "--host", target.url, "-u", "2", "-t", "3s", "--html", str(copy),
                     "--out", str(tmp_path), report=True)  # fmt: skip
    assert result.code == 0, result.stderr
    page = (Path(result.last_line) / "report.html").read_text()
    assert copy.read_text() == page and f"report: {copy}" in result.stderr
    assert "Not analysed yet" in page and "<h2>Database indexes</h2>" not in page
    from loadwise.reports.data import load

    assert load(result.last_line).timeline.index.min() == 0.0
    quiet = run_cli("run", "smoke", "--host", target.url, "-u", "1", "-t", "2s", "--no-report", "--out", str(tmp_path))
    assert quiet.code == 0 and not (Path(quiet.last_line) / "report.html").exists()


LOCUST_HABITS = """
from locust import FastHttpUser, User, constant, events, tag, task


@events.init_command_line_parser.add_listener
def _(parser):
    parser.add_argument("--shop-region", default="eu", help="a locustfile's own option")


class Shopper(FastHttpUser):
    weight = 3
    wait_time = constant(0.05)

    @tag("browse")
    @task
    def browse(self):
        self.client.get("/health", name=f"browse-{self.environment.parsed_options.shop_region}")

    @tag("admin")
    @task
    def admin(self):
        self.client.get("/health", name="admin")


class Auditor(FastHttpUser):
    fixed_count = 1
    wait_time = constant(0.05)

    @task
    def audit(self):
        self.client.get("/health", name="audit")
"""


@pytest.mark.slow
def test_locust_options_pass_through_and_are_recorded(tmp_path, target):
    """A Locust user's command line, unchanged: -f, --headless, -H, --run-time, --tags, a
    locustfile's own option, a User class name; `--processes N` means N local workers, and the
    options reach the master and the workers alike."""
    workers = ["--processes", "2"]
    path = tmp_path / "habits.py"
    path.write_text(LOCUST_HABITS)
    (tmp_path / "locust.conf").write_text("loglevel = INFO\n")  # read by Locust from the working directory
    result = run_cli("run", "-f", str(path), "--headless", "-H", target.url, "-u", "4", "--run-time", "4s",
                     "--tags", "browse", "--shop-region", "us", "Shopper", *workers, "--out", str(tmp_path),
                     cwd=tmp_path, env={"LOCUST_STOP_TIMEOUT": "1"})  # fmt: skip
    assert result.code == 0, result.stderr
    info = json.loads((Path(result.last_line) / "run.json").read_text())
    names = {e["name"] for e in json.loads((Path(result.last_line) / "summary.json").read_text())["endpoints"]}
    assert names == {"browse-us"}  # only the tagged task, of the class named, with the custom option's value
    locust = info["locust"]
    assert locust["tags"] == ["browse"] and [u["name"] for u in locust["user_classes"]] == ["Shopper"]
    assert str(tmp_path / "locust.conf") in locust["config_files"]
    assert locust["environment"] == {"LOCUST_STOP_TIMEOUT": "1"}
    assert "--shop-region" in locust["argv"]
    assert info["workers"] == (2 if workers else 0)


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
