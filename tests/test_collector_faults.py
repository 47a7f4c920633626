"""Collector faults: Prometheus down, answering 500, too slow; a scrape target that goes away.
The run completes, nothing recorded is lost, and run.json says what could not be had."""

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import run_cli

from loadwise.analysis.rundir import RunDir
from loadwise.run.collector import default_queries
from loadwise.run.demo_target import DemoTarget
from loadwise.run.net import free_port

pytestmark = pytest.mark.slow  # every test here runs real load


class _Handler(BaseHTTPRequestHandler):
    mode = "500"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.mode == "slow":
            time.sleep(3)
        self.send_response(500)
        self.end_headers()
        self.wfile.write(b"internal error")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_prometheus(request) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"mode": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _run(target_url: str, tmp_path, *extra: str):
    (tmp_path / "loadwise.toml").write_text('[profiles.t.prometheus]\nsettle = "0s"\ntimeout = "1s"\n')
    result = run_cli("run", "smoke", "--host", target_url, "--profile", "t", "--users", "2", "--spawn-rate", "2",
                     "--duration", "4s", "--interval", "1", "--out", str(tmp_path), *extra, cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    run_dir = RunDir(result.last_line)
    info = run_dir.read_info()
    assert info.status == "completed"
    assert run_dir.read_summary()["overall"]["requests"] == run_dir.read_intervals()["requests"].sum() > 0
    return info, run_dir


def test_prometheus_unreachable(target, tmp_path):
    info, run_dir = _run(target.url, tmp_path, "--prometheus", f"http://user:pw@127.0.0.1:{free_port()}")
    assert ":pw@" not in (run_dir.path / "run.json").read_text()  # credentials in a URL are redacted
    missing = info.collector["missing"]
    assert {p["series"] for p in missing} == set(default_queries(None, "1m"))
    assert all("unreachable" in p["reason"] for p in missing)


@pytest.mark.parametrize(("fake_prometheus", "needle"), [("500", "500"), ("slow", "unreachable")], indirect=["fake_prometheus"])
def test_prometheus_errors_and_timeouts(target, tmp_path, fake_prometheus, needle):
    started = time.monotonic()
    info, _ = _run(target.url, tmp_path, "--prometheus", fake_prometheus)
    assert {p["series"] for p in info.collector["missing"]} == set(default_queries(None, "1m"))
    assert all(needle in p["reason"] for p in info.collector["missing"])
    assert time.monotonic() - started < 60  # one timeout, not one per query


def test_scrape_target_that_disappears_mid_run(target, tmp_path):
    with DemoTarget(rows=1000) as other:  # stopped mid-run by the timer; the exit removes its log
        stopper = threading.Timer(2.5, other.stop)
        stopper.start()
        try:
            info, run_dir = _run(target.url, tmp_path, "--scrape", f"{target.url}/metrics", "--scrape", f"{other.url}/metrics")
        finally:
            stopper.cancel()
    problems = [p for p in info.collector["missing"] if p.get("target") == f"{other.url}/metrics"]
    assert problems and "scrape(s) failed" in problems[0]["reason"]
    metrics = run_dir.read_metrics()
    instances = set(metrics["labels"])
    assert any(target.url in lb for lb in instances) and any(other.url in lb for lb in instances)
    assert info.collector["series"]["scrape"]  # what was scraped before it went is kept


def test_missing_auth_variable_is_reported_not_sent(target, tmp_path, monkeypatch):
    monkeypatch.delenv("LW_TEST_PROM_TOKEN", raising=False)
    (tmp_path / "loadwise.toml").write_text(
        '[profiles.t.prometheus]\nsettle = "0s"\nbearer_token_env = "LW_TEST_PROM_TOKEN"\n'
    )
    result = run_cli("run", "smoke", "--host", target.url, "--profile", "t", "--users", "1", "--duration", "2s",
                     "--prometheus", f"http://127.0.0.1:{free_port()}", "--out", str(tmp_path), cwd=tmp_path)
    assert result.code == 0
    missing = RunDir(result.last_line).read_info().collector["missing"]
    assert missing == [{"source": "prometheus", "series": "*", "reason": "environment variable LW_TEST_PROM_TOKEN is not set"}]


def test_bearer_token_is_sent_to_prometheus_and_never_written(target, tmp_path, monkeypatch):
    seen: list[str] = []

    class Capture(_Handler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization", ""))
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = "s3cr3t-token-value"
    monkeypatch.setenv("LW_TEST_PROM_TOKEN", secret)
    (tmp_path / "loadwise.toml").write_text(
        '[profiles.t.prometheus]\nsettle = "0s"\nbearer_token_env = "LW_TEST_PROM_TOKEN"\n'
    )
    try:
        result = run_cli("run", "smoke", "--host", target.url, "--profile", "t", "--users", "1", "--duration", "2s",
                         "--prometheus", f"http://127.0.0.1:{server.server_address[1]}", "--out", str(tmp_path),
                         cwd=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert result.code == 0
    assert seen and all(h == f"Bearer {secret}" for h in seen)
    for path in RunDir(result.last_line).path.iterdir():
        text = path.read_text(errors="replace")
        assert secret not in text, path.name
