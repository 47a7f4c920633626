"""Shared fixtures. Integration tests start real processes on 127.0.0.1 and stop them by PID."""

# Import locust first so gevent patches before anything else imports ssl or threading.
import locust  # noqa: F401, I001

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadwise.run.demo_target import DemoTarget

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def target() -> Iterator[DemoTarget]:
    """A demo shop (one worker, default seed) shared by a module's tests."""
    with DemoTarget() as shop:
        yield shop


def counter_by_label(shop: DemoTarget, counter: str, label: str) -> dict[str, float]:
    """A counter from the target's /metrics (e.g. demo_cache_requests_total), summed per value of one label."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(shop.metrics_text()):
        for sample in family.samples:
            if sample.name == counter:
                key = sample.labels.get(label, "")
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def served_requests(shop: DemoTarget) -> int:
    """The target's own count of requests served, from its /metrics."""
    return int(sum(counter_by_label(shop, "http_requests_total", "route").values()))


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = self.stdout.strip().splitlines()
        return lines[-1] if lines else ""


def run_cli(*args: str, timeout: float = 120, cwd: Path | None = None, env: dict[str, str] | None = None,
            report: bool = False) -> CliResult:  # fmt: skip
    """`python -m loadwise ARGS`, bounded in time. `loadwise run` renders its report unless
    told not to; the suite asks it not to (about 2 s a run) except where `report=True`."""
    if args[:1] == ("run",) and not report and "--no-report" not in args:
        args = (*args, "--no-report")
    proc = subprocess.run(
        [sys.executable, "-m", "loadwise", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli_here(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """`loadwise ARGS` in this process (the CLI's own main, output captured): no interpreter
    start-up per call, for tests that call it often. Commands that run Locust need run_cli."""
    from loadwise.cli.main import main

    def call(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return call


def assert_one_line_error(result: CliResult, *needles: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """The session's throwaway PostgreSQL (services.Postgres: its `dsn`, and its server `log`)."""
    from services import Postgres

    server = Postgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: Any) -> str:
    return postgres_server.dsn


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    from services import Redis

    server = Redis().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def fresh_redis() -> Iterator[str]:
    """A Redis of the test's own (config and statistics untouched by other tests)."""
    from services import Redis

    server = Redis().start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> CliResult:
    """`loadwise demo` once for the session (7 steps of 4 s up to 1,400 arrivals/s against one shop
    worker): the report test reads it, the capacity verification takes it as its BEFORE (copied)."""
    result = run_cli("demo", "--duration", "28s", "--out", str(tmp_path_factory.mktemp("demo")), timeout=180)
    assert result.code == 0, result.stderr
    return result
