"""Bad input: exit code 2 and one line naming it; a target that is down: a failed run, exit 1."""

import pytest
from conftest import assert_one_line_error, run_cli

from loadwise.analysis.rundir import RunDir
from loadwise.run.net import free_port


@pytest.mark.slow
def test_unreachable_target_is_a_failed_run_with_the_connection_errors_counted(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = run_cli("run", "smoke", "--host", dead, "--users", "2", "--spawn-rate", "2", "--duration", "3s",
                     "--out", str(tmp_path))
    assert result.code == 1
    assert "Traceback" not in result.stderr
    run_dir = RunDir(result.last_line)
    info = run_dir.read_info()
    assert info.status == "failed" and "no request succeeded" in info.status_reason
    intervals, errors = run_dir.read_intervals(), run_dir.read_errors()
    assert intervals["requests"].sum() == intervals["failures"].sum() == errors["count"].sum() > 0
    assert errors["error"].str.contains("Connection refused|ConnectionRefused", regex=True).all()
    assert "status: failed" in result.stdout


HALF_FAILING = """
from locust import FastHttpUser, constant, task


class HalfFailing(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def ok(self):
        self.client.get("/health", name="ok")

    @task
    def missing(self):
        self.client.get("/no-such-page", name="missing")  # 404: a failure in Locust's eyes
"""


@pytest.mark.slow
def test_failed_requests_give_locusts_exit_code_and_the_run_stays_completed(tmp_path, target):
    """As `locust` does: a run in which requests failed exits 1, or what --exit-code-on-error
    says; its status stays `completed` (it ran to its end)."""
    locustfile = tmp_path / "half_failing.py"
    locustfile.write_text(HALF_FAILING)
    common = ["run", str(locustfile), "--host", target.url, "-u", "2", "-t", "3s", "--out", str(tmp_path)]
    default = run_cli(*common)
    assert default.code == 1, default.stderr
    assert "request(s) failed: exit code 1" in default.stderr and "status: completed" in default.stdout
    summary = RunDir(default.last_line).read_summary()
    assert 0 < summary["overall"]["failures"] < summary["overall"]["requests"]
    assert RunDir(default.last_line).read_info().status == "completed"
    assert run_cli(*common, "--exit-code-on-error", "0").code == 0
    bad = run_cli(*common, "--exit-code-on-error", "256")  # refused before any load
    assert bad.code == 2 and "exit code from 0 to 255" in bad.stderr


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["run", "nosuch", "--host", "http://127.0.0.1:9"], ["unknown scenario 'nosuch'", "browse"]),
        (["run", "browse", "--host", "http://10.20.30.40"], ["'10.20.30.40' is not allowed"]),
        (["run", "browse", "--host", "https://example.com"], ["'example.com' is not allowed"]),
        (["run", "browse", "--host", "http://127.0.0.1:9", "--shape", "step", "--users", "2",
          "--shape-param", "steps=5"], ["steps must be between 1 and users=2"]),
        (["run", "browse", "--host", "http://127.0.0.1:9", "--shape-param", "steps=5"], ["unknown parameter 'steps'"]),
        (["run", "browse", "--host", "http://127.0.0.1:9", "--duration", "soon"], ["'soon' is not a duration"]),
        (["run", "browse", "--host", "http://127.0.0.1:9", "--shape", "wave"], ["invalid choice: 'wave'"]),
        (["run", "browse"], ["no --host"]),
        (["run", "browse", "--host", "http://127.0.0.1:9", "--profile", "prod"], ["loadwise.toml: no such file"]),
        (["run", "browse", "--host", "http://127.0.0.1:9", "--tag", "oops"], ["--tag 'oops': expected KEY=VALUE"]),
    ],
)
def test_bad_input_is_exit_2_with_one_line(tmp_path, args, needles):
    result = run_cli(*args, "--out", str(tmp_path), cwd=tmp_path)
    assert result.code == 2, result.stderr
    assert_one_line_error(result, *needles)
    assert not any(tmp_path.glob("*/run.json"))  # nothing started


def test_malformed_profile_file(tmp_path):
    (tmp_path / "loadwise.toml").write_text("[profiles.dev\nhost=1")
    result = run_cli("run", "browse", "--profile", "dev", cwd=tmp_path)
    assert result.code == 2
    assert_one_line_error(result, "loadwise.toml: malformed TOML")


def test_profile_allows_a_listed_host_only(tmp_path):
    (tmp_path / "loadwise.toml").write_text(
        '[profiles.staging]\nhost = "http://10.9.9.9:8080"\nallowed_hosts = ["10.9.9.8"]\n'
    )
    result = run_cli("run", "browse", "--profile", "staging", cwd=tmp_path)
    assert result.code == 2
    assert_one_line_error(result, "'10.9.9.9' is not allowed")


def test_broken_locustfile_is_exit_2_naming_the_error(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("from locust import HttpUser\ndef broken(:\n")
    result = run_cli("run", str(bad), "--host", "http://127.0.0.1:9", "--duration", "2s", "--out", str(tmp_path))
    assert result.code == 2
    assert_one_line_error(result, "before the run started", "SyntaxError")


def test_no_command_prints_help_and_exit_2():
    result = run_cli()
    assert result.code == 2 and "run" in result.stdout and "demo" in result.stdout


def test_help_teaches_shapes():
    result = run_cli("run", "--help")
    assert result.code == 0
    for shape in ("constant", "ramp", "step", "spike", "soak", "diurnal", "steps", "min_users"):
        assert shape in result.stdout


def _copy_run(tmp_path, name="r"):
    from synthetic import make_run

    return make_run(tmp_path / name, {("GET", "/a"): 5.0}, seconds=20).path


@pytest.mark.parametrize(
    ("damage", "args", "needle"),
    [
        (lambda p: (p / "run.json").write_text('{"id": "x"}'), ["report"], "no scenario, host"),
        (lambda p: ((p / "run.json").unlink(), (p / "run.json").mkdir()), ["gate"], "cannot read"),
        (lambda p: (p / "summary.json").write_text("[]"), ["gate"], "not a loadwise summary"),
        (lambda p: (p / "run.json").write_text((p / "run.json").read_text().replace('"started_at": "', '"started_at": "x')),
         ["capacity"], "not an ISO 8601 time"),
        (lambda p: (p / "intervals.csv").write_text((p / "intervals.csv").read_text().replace("HISTFAAAA", "HISTFAAAA" + "A" * 8, 1)),
         ["report"], "corrupt"),
    ],
)  # fmt: skip
def test_damaged_run_directories_are_one_line_errors(tmp_path, damage, args, needle, cli_here):
    path = _copy_run(tmp_path)
    damage(path)
    result = cli_here(args[0], str(path), *args[1:])
    assert result.code == 2, result.stderr
    assert_one_line_error(result, needle)


@pytest.mark.slow
def test_unwritable_outputs_and_bad_numbers_are_one_line_errors(tmp_path):
    path = _copy_run(tmp_path)
    for args, needle in (
        (["report", str(path), "-o", str(tmp_path / "nodir" / "x.html")], "No such file or directory"),
        (["gate", str(path), "--junit", str(tmp_path / "nodir" / "j.xml")], "No such file or directory"),
        (["capacity", str(path), "--target-rps", "nan"], "positive, finite"),
        (["advise", "db", "--dsn", "not a dsn"], "cannot connect"),
        (["advise", "cache", "--redis", "notaurl"], "Redis at"),
    ):
        result = run_cli(*args)
        assert result.code == 2, (args, result.stderr)
        assert_one_line_error(result, needle)
    into_dir = run_cli("report", str(path), "-o", str(tmp_path))
    assert into_dir.code == 0 and (tmp_path / "report.html").exists()


def test_a_run_as_its_own_baseline_is_bad_input_naming_it(tmp_path, cli_here):
    from synthetic import make_run

    run = make_run(tmp_path / "20260101T000000Z-synthetic", {("GET", "/a"): 10.0}, seconds=10)
    result = cli_here("gate", str(run.path), "--baseline", str(run.path))
    assert result.code == 2
    assert_one_line_error(result, "--baseline names only", str(run.path), "not its own baseline")


def test_a_bug_in_loadwise_is_an_internal_error_with_its_traceback_in_a_file(tmp_path, cli_here, monkeypatch):
    """An exception that is not bad input (here a planted bug in the summary) is not dressed as
    bad input: `internal error`, exit code 3, the traceback written to a file the line names."""
    from synthetic import make_run

    from loadwise.analysis import windows

    run = make_run(tmp_path / "20260101T000000Z-synthetic", {("GET", "/a"): 10.0}, seconds=10)

    def planted(*_args, **_kwargs):
        raise KeyError("p95_ms")

    monkeypatch.setattr(windows, "window_summary", planted)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    result = cli_here("gate", str(run.path), "--threshold", "p95<100")
    assert result.code == 3
    assert_one_line_error(result, "internal error", "KeyError", "not your input")
    assert "malformed" not in result.stderr
    saved = list(tmp_path.glob("loadwise-gate-internal-error-*.txt"))
    assert len(saved) == 1 and str(saved[0]) in result.stderr
    text = saved[0].read_text()
    assert "Traceback" in text and "planted" in text and "KeyError: 'p95_ms'" in text


@pytest.mark.parametrize("option, value, says", [("--interval", "-3", "must be a positive"),
                                                  ("--max-lateness", "5x", "is not a duration")])  # fmt: skip
def test_plain_locust_reads_loadwises_options_as_loadwise_run_does(tmp_path, option, value, says):
    """`locust -f locustfile.py` declares loadwise's options from the same spec and readers as
    `loadwise run`: a bad value is argparse's one line, exit 2, before any run starts."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-m", "locust", "-f", str(root / "locustfile.py"), option, value, "--headless",
                           "-t", "1s", "--runs-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert f"argument {option}: '{value}' {says}" in lines[-1] and "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir())  # no run directory was made
