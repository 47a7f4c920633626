"""Locust example-style locustfiles under `loadwise run`, against a real nginx on loopback.

The locustfile below uses what Locust's own examples use: a custom LoadTestShape, tags,
weights and fixed_count, an option added with `events.init_command_line_parser`, the User
classes' own `host`, a non-HTTP user that fires request events itself, and a task that
raises. nginx's access log is the server-side truth: every endpoint's count in the run
directory equals what nginx served, locally and with `--processes 2`.

Bounded: a shape of at most 6 users for 3 s, wait times of 50 ms, loopback only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli
from services import Nginx

EXAMPLE = '''
import socket
import time
from urllib.parse import urlsplit

from locust import FastHttpUser, HttpUser, LoadTestShape, User, constant, events, tag, task

HOST = "{host}"


@events.init_command_line_parser.add_listener
def _(parser):
    parser.add_argument("--shop-region", default="eu", help="a locustfile's own option")


class Shopper(FastHttpUser):
    host = HOST
    weight = 3
    wait_time = constant(0.05)

    @tag("browse")
    @task(3)
    def browse(self):
        self.client.get(f"/browse/{{self.environment.parsed_options.shop_region}}")

    @tag("browse")
    @task
    def checkout(self):
        self.client.get("/fail")  # nginx answers 500: a failed request
        raise ValueError("basket is empty")  # and then a bug in the task: an exception, not a failure

    @tag("admin")
    @task
    def admin(self):
        self.client.get("/admin")  # excluded by --tags browse: nginx must never see it


class Auditor(HttpUser):
    host = HOST
    fixed_count = 1
    wait_time = constant(0.05)

    @tag("browse")
    @task
    def audit(self):
        self.client.get("/audit")


class RawSocketUser(User):
    """Not HTTP to Locust: it speaks to the server on a socket and fires the request event itself."""

    host = HOST
    wait_time = constant(0.05)

    @tag("browse")
    @task
    def raw(self):
        url = urlsplit(self.host)
        start = time.perf_counter()
        with socket.create_connection((url.hostname, url.port), timeout=5) as conn:
            conn.sendall(b"GET /raw HTTP/1.0\\r\\nHost: shop\\r\\n\\r\\n")
            received = b""
            while chunk := conn.recv(4096):
                received += chunk
        self.environment.events.request.fire(request_type="RAW", name="/raw", response_time=(time.perf_counter() - start) * 1000,
                                             response_length=len(received), exception=None, context={{}})


class Steps(LoadTestShape):
    def tick(self):
        run_time = self.get_run_time()
        if run_time < 1.5:
            return (4, 20)
        if run_time < 3:
            return (6, 20)
        return None
'''


@pytest.fixture(scope="module")
def nginx():
    server = Nginx().start()
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("processes", [0, 2])
def test_an_example_style_locustfile_runs_unchanged_and_counts_equal_nginx(tmp_path, nginx, processes):
    nginx.clear()
    path = tmp_path / "example.py"
    path.write_text(EXAMPLE.format(host=nginx.url))
    (tmp_path / "locust.conf").write_text("loglevel = INFO\n")  # read by Locust from the working directory
    workers = ["--processes", str(processes)] if processes else []
    result = run_cli("run", "-f", str(path), "--headless", "--tags", "browse", "--shop-region", "us", *workers,
                     "--out", str(tmp_path), cwd=tmp_path, env={"LOCUST_STOP_TIMEOUT": "1"}, report=not processes)  # fmt: skip
    run_dir = Path(result.last_line)
    assert result.code == 1, result.stderr  # /fail failed: Locust's exit code when any request failed
    info = json.loads((run_dir / "run.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())

    served = nginx.served()
    recorded = {(e["method"], e["name"]): e["requests"] for e in summary["endpoints"]}
    print("nginx served", served, "run recorded", recorded)
    assert {("GET", "/browse/us"), ("GET", "/fail"), ("GET", "/audit"), ("RAW", "/raw")} == set(recorded)
    for (method, name), count in recorded.items():  # the raw-socket user's requests are GETs to nginx
        assert served.get(("GET", name)) == count, (method, name)
    assert ("GET", "/admin") not in served  # the tag filter ran on the server side too
    failures = {e["name"]: e["failures"] for e in summary["endpoints"]}
    assert failures["/fail"] == recorded[("GET", "/fail")] and failures["/browse/us"] == 0

    # The locustfile's own shape ran, and run.json says what it produced.
    assert info["status"] == "completed" and info["shape"] == "Steps"
    assert info["shape_params"]["peak_users"] == 6 and 2.5 <= info["shape_params"]["duration_s"] <= 8
    assert info["workers"] == processes

    # What shaped the run on Locust's side, and each User class's share of it.
    locust = info["locust"]
    assert locust["tags"] == ["browse"] and "--shop-region" in locust["argv"]
    assert str(tmp_path / "locust.conf") in locust["config_files"]
    assert locust["environment"] == {"LOCUST_STOP_TIMEOUT": "1"}
    classes = {c["name"]: c for c in locust["user_classes"]}
    assert set(classes) == {"Shopper", "Auditor", "RawSocketUser"}
    assert classes["Auditor"]["fixed_count"] == 1 and classes["Auditor"]["peak_users"] == 1
    assert classes["Shopper"]["peak_users"] > classes["RawSocketUser"]["peak_users"] >= 1  # weights 3 : 1
    assert classes["Shopper"]["requests"] == recorded[("GET", "/browse/us")] + recorded[("GET", "/fail")]
    assert classes["Shopper"]["failures"] == recorded[("GET", "/fail")]
    assert classes["Auditor"]["requests"] == recorded[("GET", "/audit")]
    assert classes["RawSocketUser"]["requests"] == recorded[("RAW", "/raw")]

    # The task that raised: grouped, counted, one traceback.
    exceptions = pd.read_csv(run_dir / "exceptions.csv")
    assert list(exceptions["message"]) == ["basket is empty"]
    assert 1 <= exceptions["count"].iloc[0] <= recorded[("GET", "/fail")]
    assert "in checkout" in exceptions["traceback"].iloc[0]

    if not processes:  # the report's metadata says the same (rendered at the end of the local run)
        page = (run_dir / "report.html").read_text()
        audit = recorded[("GET", "/audit")]
        assert f"Auditor (fixed_count 1, peak 1 users, {audit:,} requests (0 failed))" in page
        assert "<dt>tag filter</dt><dd>only browse</dd>" in page and "LOCUST_STOP_TIMEOUT=1" in page


WEB_UI = """
from locust import FastHttpUser, constant, task


class Browser(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def page(self):
        self.client.get("/page")
"""


def _ui(url: str, path: str, form: dict[str, str] | None = None) -> dict:
    import urllib.parse
    import urllib.request

    data = urllib.parse.urlencode(form).encode() if form is not None else None
    with urllib.request.urlopen(url + path, data=data, timeout=10) as response:
        return json.loads(response.read() or b"{}")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_each_test_started_from_the_web_ui_is_its_own_completed_run(tmp_path, nginx, workers):
    """`loadwise run --web-ui`: Locust's UI on loopback; two tests started and stopped from it
    (POST /swarm, POST /stop) give two run directories (distributed: one, the master waiting
    for its workers' last reports), each `completed` (stopped by the user),
    each counting what nginx served during it; a host outside the allow-list is refused by the form."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from loadwise.run.net import free_port

    path = tmp_path / "ui.py"
    path.write_text(WEB_UI)
    port = free_port()
    ui = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "loadwise", "run", str(path), "--web-ui", "--web-port", str(port),
                             "--workers", str(workers), "--out", str(tmp_path / "runs"), "--no-report"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:  # the UI is up (and, distributed, every worker has connected: Locust starts no test before)
            try:
                if len(_ui(ui, "/stats/requests").get("workers", [])) == workers:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the web UI (or its workers) did not come up"
            time.sleep(0.2)
        refused = _ui(ui, "/swarm", {"user_count": "2", "spawn_rate": "2", "host": "http://shop.example.com"})
        assert refused["success"] is False and "shop.example.com" in refused["message"]
        served = []
        for test in range(1, 3 if not workers else 2):  # distributed: one test shows the master's wait for its workers
            nginx.clear()
            assert _ui(ui, "/swarm", {"user_count": "3", "spawn_rate": "10", "host": nginx.url})["success"]
            time.sleep(1.5)
            _ui(ui, "/stop", {})  # POST, as the UI sends it
            deadline = time.monotonic() + 30  # the test's run directory is finished (summary.json) when it stopped
            while len(list((tmp_path / "runs").glob("*/summary.json"))) < test:
                assert time.monotonic() < deadline, "the stopped test's run directory was not finished"
                time.sleep(0.2)
            served.append(nginx.served().get(("GET", "/page"), 0))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    runs = sorted(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert len(runs) == (2 if not workers else 1), (runs, err)
    for run_dir, count in zip(runs, served):
        info = json.loads((run_dir / "run.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        assert info["status"] == "completed" and info["status_reason"] == "stopped by the user from the web UI"
        assert info["host"] == nginx.url and info["shape_params"]["source"] == "web UI"
        assert info["shape_params"]["peak_users"] == 3
        # A request in flight when Stop kills its user reaches nginx but never returns to Locust: at most one a user.
        assert 0 <= count - summary["overall"]["requests"] <= 3 and count > 0
        assert str(run_dir) in out
