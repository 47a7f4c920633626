"""Hardening: secrets never reach a run directory, a log or stdout; run directories are
created atomically; locust.log is bounded. Secrets are planted in a real run and every
output file is grepped for them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import run_cli

from loadwise.analysis.redact import redact
from loadwise.analysis.rundir import new_run_path
from loadwise.run.runlog import RunLog

SECRETS = {
    "bearer_repr": ("{'Authorization': 'Bearer tok-AAAA1111'}", "tok-AAAA1111"),
    "bearer_bare": ("sent Bearer tok-BBBB2222 to the target", "tok-BBBB2222"),
    "basic_header": ("Authorization: Basic dXNlcjpQQVNTMzMzMw==", "dXNlcjpQQVNTMzMzMw=="),
    "userinfo": ("http://user:PASS4444@127.0.0.1:9/x", "PASS4444"),
    "query_token": ("/items?token=tok5555&page=2", "tok5555"),
    "api_key_header": ("X-API-Key: key6666", "key6666"),
    "api_key_query": ("/v1?api_key=key7777", "key7777"),
    "session": ("session=sess8888; path=/", "sess8888"),
    "cookie": ("Cookie: theme=dark; sid=sid9999", "sid9999"),
    "password_json": ('{"password": "pw0000"}', "pw0000"),
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_each_secret_form_is_redacted(name):
    text, secret = SECRETS[name]
    assert secret not in redact(text)
    assert "[REDACTED]" in redact(text)


@pytest.mark.parametrize("text", ["GET /products/[id]", "HTTPError 500 for /search?q=shoes&page=2", "the sid column",
                                  "ConnectionRefusedError(111, 'Connection refused')", "cache key miss"])
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


LOCUSTFILE = '''
from locust import FastHttpUser, constant, task


class Leaky(FastHttpUser):
    wait_time = constant(0.2)

    @task
    def leak(self):
        # a token in a URL without name=, and a locustfile that prints secrets
        self.client.get("/products/1?token=tok5555&api_key=key7777")
        print("debug: {'Authorization': 'Bearer tok-AAAA1111'} session=sess8888")
        with self.client.get("/no-such-page", catch_response=True) as response:
            response.failure("denied with Authorization: Basic dXNlcjpQQVNTMzMzMw== Bearer tok-BBBB2222")
'''


@pytest.mark.slow
def test_planted_secrets_reach_no_output(tmp_path, target):
    """A real run whose host carries userinfo and a token, whose locustfile requests a URL with
    a token and prints and fails with secrets: no file of the run directory and no stdout holds one."""
    locustfile = tmp_path / "leaky.py"
    locustfile.write_text(LOCUSTFILE)
    host = target.url.replace("http://", "http://user:PASS4444@") + "/?token=tok5555"
    result = run_cli("run", str(locustfile), "--host", host, "--users", "2", "--duration", "4s",
                     "--out", str(tmp_path / "runs"), timeout=90)  # fmt: skip
    run_dir = Path(result.last_line)
    assert run_dir.is_dir(), result.stderr
    report = run_cli("report", str(run_dir))
    assert report.code == 0, report.stderr
    planted = ["PASS4444", "tok5555", "key7777", "tok-AAAA1111", "tok-BBBB2222", "dXNlcjpQQVNTMzMzMw==", "sess8888"]
    outputs = {p.name: p.read_text(errors="replace") for p in run_dir.iterdir() if p.is_file()}
    outputs["stdout"], outputs["stderr"] = result.stdout + report.stdout, result.stderr + report.stderr
    assert {"run.json", "intervals.csv", "errors.csv", "summary.json", "locust.log", "report.html"} <= set(outputs)
    leaks = [(name, s) for name, text in outputs.items() for s in planted if s in text]
    assert leaks == []
    assert "[REDACTED]" in outputs["run.json"] and "[REDACTED]" in outputs["locust.log"]


def test_run_directories_created_in_the_same_second_never_collide(tmp_path):
    """What every run goes through (`execute`, the web UI's tests): rundir.new_run_path's atomic mkdir."""
    made: list[Path] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(40)

    def make() -> None:
        barrier.wait()
        try:
            made.append(new_run_path(tmp_path, "browse"))
        except BaseException as exc:  # noqa: BLE001 - the test counts every failure
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(made)) == 40


def test_locust_log_is_redacted_capped_and_rotated(tmp_path):
    log = RunLog(tmp_path / "locust.log", file_bytes=1000, backups=2)
    for i in range(200):
        log.write(f"line {i} Authorization: Bearer tok-{i:08d}\n")
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["locust.log", "locust.log.1", "locust.log.2"]
    texts = {name: (tmp_path / name).read_text() for name in files}
    assert not any("tok-" in t for t in texts.values())
    assert all(len(t) <= 1000 for name, t in texts.items() if name != "locust.log")
    assert "line 199 " in texts["locust.log"] and "the oldest output beyond 2 rotated files was deleted" in texts["locust.log"]
    # The three files hold the newest lines, in order, without a gap.
    kept = [int(ln.split()[1]) for name in ("locust.log.2", "locust.log.1", "locust.log")
            for ln in texts[name].splitlines() if ln.startswith("line ")]
    assert kept == list(range(kept[0], 200)) and kept[0] > 0
