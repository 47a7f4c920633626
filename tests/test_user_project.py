"""A user's load-test project with its own scenarios/, analysis/, reports/, demo/ and
capacity/ packages beside its locustfile, run by loadwise and by plain Locust.

Locust puts the locustfile's directory first on sys.path, so a user's `scenarios` package
used to shadow loadwise's own (`ImportError: cannot import name 'SCENARIOS' from
'scenarios'`) before everything moved under the one import root `loadwise.*`. Each run
here must load the user's packages, complete, and count exactly what the demo target
served, endpoint by endpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import counter_by_label, run_cli

from loadwise.run.demo_target import DemoTarget

pytestmark = pytest.mark.slow  # four real Locust runs against the demo target

USERS = 4
# What the user's locustfile requests: (method, request name) -> the demo target's route label.
ROUTES = {("GET", "list products"): "/products", ("GET", "search"): "/search", ("POST", "place order"): "/orders"}

# Each package defines something loadwise's package of the same name does not, so an
# import that reached loadwise's (or anyone else's) fails at once, naming it.
PACKAGES = {
    "scenarios/__init__.py": '"""The shop team\'s scenarios (not loadwise\'s: no SCENARIOS here)."""\n\nMY_USERS_WEIGHT = 3\n',
    "scenarios/catalog.py": 'CATEGORIES = ("books", "garden", "toys")\n',
    "analysis/__init__.py": '"""The team\'s own analysis helpers."""\n',
    "analysis/payloads.py": (
        "def body(i: int) -> dict:\n"
        '    """An order for one of the first 50 customers and products."""\n'
        '    return {"customer_id": 1 + i % 50, "product_id": 1 + (7 * i) % 50, "quantity": 1 + i % 3}\n'
    ),
    "reports/__init__.py": '"""The team\'s reports."""\n\nREPORT_TITLE = "shop load"\n',
    "reports/names.py": 'LIST, SEARCH, ORDER = "list products", "search", "place order"\n',
    "demo/__init__.py": '"""The team\'s demo data."""\n',
    "demo/words.py": 'SEARCH_WORDS = ("red", "lamp", "book", "garden")\n',
    "capacity/__init__.py": '"""The team\'s load settings."""\n',
    "capacity/pacing.py": "THINK_S = (0.05, 0.2)  # bounded think time between tasks\n",
}
LOCUSTFILE = '''"""The shop team's locustfile: everything it uses comes from its own packages."""

import itertools
from pathlib import Path
from urllib.parse import urlencode

import analysis
import capacity
import demo
import reports
import scenarios
from analysis.payloads import body
from capacity.pacing import THINK_S
from demo.words import SEARCH_WORDS
from locust import FastHttpUser, between, task
from reports.names import LIST, ORDER, SEARCH
from scenarios import MY_USERS_WEIGHT
from scenarios.catalog import CATEGORIES

HERE = Path(__file__).resolve().parent
for package in (analysis, capacity, demo, reports, scenarios):
    if Path(package.__file__).resolve().parent.parent != HERE:
        raise ImportError(f"{package.__name__} came from {package.__file__}, not from this project")

_counter = itertools.count()


class Shopper(FastHttpUser):
    wait_time = between(*THINK_S)

    @task(MY_USERS_WEIGHT)
    def list_products(self):
        i = next(_counter)
        self.client.get("/products?" + urlencode({"category": CATEGORIES[i % len(CATEGORIES)], "limit": 5}), name=LIST)

    @task
    def search(self):
        i = next(_counter)
        self.client.get("/search?" + urlencode({"q": SEARCH_WORDS[i % len(SEARCH_WORDS)]}), name=SEARCH)

    @task
    def place_order(self):
        self.client.post("/orders", json=body(next(_counter)), name=ORDER)
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shop-load")
    for relative, text in {**PACKAGES, "locustfile.py": LOCUSTFILE}.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")
    return root


def _served(shop: DemoTarget) -> dict[str, float]:
    return counter_by_label(shop, "http_requests_total", "route")


def _served_during(shop: DemoTarget, before: dict[str, float]) -> dict[str, int]:
    """Requests the target served per route since `before` (it is shared by the module's runs)."""
    after = _served(shop)
    return {route: int(after.get(route, 0) - before.get(route, 0)) for route in set(after) | set(ROUTES.values())}


def _assert_counts_match(recorded: dict[tuple[str, str], int], served: dict[str, int]) -> None:
    """Each endpoint as the client counted it against what the target served: equal, but
    for requests still in flight when the run stopped (at most one per user in all)."""
    assert set(recorded) == set(ROUTES), f"endpoints recorded: {sorted(recorded)}"
    for key, route in ROUTES.items():
        assert recorded[key] >= 5, (key, recorded)  # every task ran, several times
        assert 0 <= served[route] - recorded[key], (key, served[route], recorded[key])
    in_flight = sum(served[route] - recorded[key] for key, route in ROUTES.items())
    assert in_flight <= USERS, (recorded, served)
    # only the user's routes were loaded: no built-in scenario ran instead
    assert {route for route, n in served.items() if n} == set(ROUTES.values()), served


def _check_run_dir(path: Path, served: dict[str, int]) -> None:
    """A completed run of the user's locustfile; its summary and intervals agree with the target."""
    info = json.loads((path / "run.json").read_text())
    assert info["status"] == "completed", info.get("status_reason")
    assert path.name.endswith("-locustfile")
    summary = json.loads((path / "summary.json").read_text())
    by_endpoint = {(e["method"], e["name"]): e for e in summary["endpoints"]}
    assert all(e["failures"] == 0 for e in by_endpoint.values()), summary["endpoints"]
    recorded = {key: int(e["requests"]) for key, e in by_endpoint.items()}
    intervals = pd.read_csv(path / "intervals.csv")
    per_endpoint = intervals.groupby(["method", "name"])["requests"].sum()
    assert {key: int(n) for key, n in per_endpoint.items()} == recorded  # one count, two files
    assert summary["overall"]["requests"] == sum(recorded.values())
    _assert_counts_match(recorded, served)


def test_loadwise_run_in_the_project_directory(target: DemoTarget, project: Path) -> None:
    before = _served(target)
    result = run_cli("run", "locustfile.py", "--host", target.url, "-u", str(USERS), "-t", "6s", cwd=project)
    assert result.code == 0, result.stderr + result.stdout
    path = project / result.last_line if not Path(result.last_line).is_absolute() else Path(result.last_line)
    assert path.resolve().parent == (project / "runs").resolve()  # the default --out, under the project
    _check_run_dir(path, _served_during(target, before))


def test_loadwise_run_from_another_directory(target: DemoTarget, project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "ci-workspace"
    elsewhere.mkdir()
    before = _served(target)
    result = run_cli("run", str(project / "locustfile.py"), "--host", target.url, "-u", str(USERS), "-t", "6s",
                     cwd=elsewhere)  # fmt: skip
    assert result.code == 0, result.stderr + result.stdout
    path = Path(result.last_line)
    path = path if path.is_absolute() else elsewhere / path
    assert path.resolve().parent == (elsewhere / "runs").resolve()
    _check_run_dir(path, _served_during(target, before))


def _locust(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)  # the project directory must be found the way Locust finds it
    return subprocess.run([sys.executable, "-m", "locust", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env)  # fmt: skip


def test_plain_locust_in_the_project_directory(target: DemoTarget, project: Path) -> None:
    """Plain Locust, no loadwise in the way: its own final stats (--json) against the target."""
    before = _served(target)
    proc = _locust(["-f", "locustfile.py", "--headless", "-u", str(USERS), "-r", str(USERS), "-t", "6s",
                    "--host", target.url, "--json", "--only-summary"], cwd=project)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads(proc.stdout)
    recorded = {(s["method"], s["name"]): int(s["num_requests"]) for s in stats}
    assert all(s["num_failures"] == 0 for s in stats), stats
    _assert_counts_match(recorded, _served_during(target, before))


def test_plain_locust_with_the_loadwise_recorder(target: DemoTarget, project: Path, tmp_path: Path) -> None:
    """The README's plain-Locust form (`locust -f <loadwise's locustfile> --scenario PATH`),
    pointed at the user's locustfile from the project directory: the recorder's run
    directory counts what the target served."""
    from loadwise.run.command import ENTRY

    before = _served(target)
    run_dir = tmp_path / "recorded-locustfile"
    proc = _locust(["-f", str(ENTRY), "--scenario", "locustfile.py", "--headless", "-u", str(USERS), "-r", str(USERS),
                    "-t", "6s", "--host", target.url, "--run-dir", str(run_dir), "--only-summary"], cwd=project)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_run_dir(run_dir, _served_during(target, before))
