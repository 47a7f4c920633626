"""A hostile /metrics on loopback: a body that drips one byte a second, and one with
100,000 series. Each scrape is bounded by a total deadline, only the series the collector
uses are kept, and a run scraping such a target still ends on time with a valid run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import run_cli

from loadwise.analysis import metrics
from loadwise.analysis.rundir import RunDir
from loadwise.run.collector import Scraper, parse_exposition

DRIP_FOR_S = 60  # the drip stops by itself, so a failed test leaves nothing running


def _huge_body(series: int) -> bytes:
    lines = ["# TYPE junk_total counter"]
    lines += [f'junk_total{{id="{i}"}} {i}' for i in range(series)]
    lines += ["# TYPE http_requests_total counter", 'http_requests_total{route="/",status="200"} 5',
              "# TYPE process_cpu_seconds_total counter", "process_cpu_seconds_total 1.5"]
    return ("\n".join(lines) + "\n").encode()


class _Hostile(BaseHTTPRequestHandler):
    huge = _huge_body(100_000)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if self.path.startswith("/drip"):
            for _ in range(DRIP_FOR_S):
                try:
                    self.wfile.write(b"#")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(1)
        else:
            self.wfile.write(self.huge)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_dripping_scrape_gives_up_at_its_deadline(hostile):
    scraper = Scraper([f"{hostile}/drip"], interval_s=5, timeout_s=1.5)
    start = time.monotonic()
    scraper.scrape_once()
    took = time.monotonic() - start
    assert took < 4.0  # one total deadline plus at most one socket read, not the drip's 60 s
    count, reason = scraper.failures[f"{hostile}/drip"]
    assert count == 1 and "longer than 1.5s" in reason


def test_only_the_collected_series_are_kept_of_a_huge_scrape(hostile):
    scraper = Scraper([f"{hostile}/huge"], interval_s=5, timeout_s=10)
    scraper.scrape_once()
    (snapshot,) = scraper.snapshots[f"{hostile}/huge"]
    assert len(snapshot.samples) == 2  # of 100,002 exposed
    assert {name for name, _ in snapshot.samples} <= metrics.SCRAPED_NAMES
    assert len(parse_exposition(_huge_body(10).decode(), 0.0, keep=None).samples) == 12


@pytest.mark.slow
def test_a_run_scraping_a_dripping_target_ends_on_time(target, hostile, tmp_path):
    start = time.monotonic()
    result = run_cli("run", "smoke", "--host", target.url, "--users", "2", "--duration", "4s", "--interval", "1",
                     "--scrape", f"{hostile}/drip", "--out", str(tmp_path), timeout=60)  # fmt: skip
    took = time.monotonic() - start
    assert result.code == 0, result.stderr
    assert took < 40, f"the run took {took:.0f}s"
    info = RunDir(result.last_line).read_info()
    assert info.status == "completed"
    assert any("longer than" in p["reason"] for p in info.collector["missing"])
