"""Several scenarios in one run: the plan (pure), the dispatcher's spread, thresholds and summaries
per scenario, and real Locust runs against nginx whose access log, split by path, is the truth.

Two scenarios, as the issue asks: a closed ramp of browsing users (GET /browse/...) for the
whole run and a constant-rate checkout (GET /checkout) starting 5 s later. Bounded: at most 6
browsing users with 0.1 s waits and 20 checkouts a second for 5 s, loopback only.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli
from services import Nginx

from loadwise.analysis.rundir import RunDir
from loadwise.analysis.summary import RunSummary
from loadwise.analysis.thresholds import evaluate, parse
from loadwise.config import ConfigError, load_profile
from loadwise.scenarios.plan import Scenario, ScenarioPlanError, from_tables, read_scenarios, seats, split

LOCUSTFILE = """
from locust import HttpUser, constant, task


class Browser(HttpUser):
    wait_time = constant(0.1)

    @task
    def browse(self):
        self.client.get("/browse/shoes", name="/browse/[category]")


class Buyer(HttpUser):
    @task
    def buy(self):
        self.client.get("/checkout")
"""

PLAN = """
[[scenario]]
name = "browsing"
classes = ["Browser"]
shape = "ramp"
users = 6
duration = "10s"
tags = { team = "catalog" }

[[scenario]]
name = "checkout"
classes = ["Buyer"]
shape = "constant-rate"
rate = 20
users = 4
start = "5s"
duration = "5s"
"""

# The same plan in Python, as a locustfile's own `scenarios` list.
PYTHON_PLAN = """
from loadwise import Scenario

scenarios = [
    Scenario.of("browsing", "ramp", classes=[Browser], users=6, duration="10s", tags={"team": "catalog"}),
    Scenario.of("checkout", "constant-rate", classes=[Buyer], rate=20, users=4, start="5s", duration="5s"),
]
"""


def _tables(text: str) -> list[dict]:
    import tomllib

    return tomllib.loads(text)["scenario"]


# -- the plan -------------------------------------------------------------------------


def test_a_plan_reads_each_scenario_with_its_shape_start_classes_and_tags(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text(PLAN)
    browsing, checkout = read_scenarios(path)
    assert (browsing.name, browsing.shape.name, browsing.shape.users, browsing.start_s, browsing.classes) == \
        ("browsing", "ramp", 6, 0.0, ("Browser",))  # fmt: skip
    assert browsing.tags == {"team": "catalog"} and not browsing.open_model
    assert checkout.open_model and checkout.shape.rate == 20 and (checkout.start_s, checkout.end_s) == (5.0, 10.0)
    # a closed scenario has no users before its start or after its end; its shape counts from its start
    late = Scenario("late", browsing.shape, start_s=3.0)
    assert [late.users_at(t) for t in (0, 2.9, 3.0, 12.9, 13.0)] == [0, 0, 1, 6, 0]


@pytest.mark.parametrize("change, message", [
    ({"name": None}, "each scenario needs a name"),
    ({"name": "has space"}, "each scenario needs a name"),
    ({"shape": None}, "scenario 'browsing': `shape` is missing"),
    ({"shape": "zigzag"}, "scenario 'browsing': unknown shape 'zigzag'"),
    ({"duration": None}, "scenario 'browsing': `duration` is missing"),
    ({"duration": "soon"}, "scenario 'browsing': duration: 'soon' is not a duration"),
    ({"start": "-5s"}, "scenario 'browsing': start: '-5s' is not a duration"),
    ({"users": "six"}, "scenario 'browsing': users: expected an integer"),
    ({"classes": "Browser"}, "scenario 'browsing': `classes` is a list of User class names"),
    ({"steps": 3}, "scenario 'browsing': ramp: unknown parameter 'steps'"),
    ({"rate": 5}, "scenario 'browsing': --rate applies to the rate shapes"),
])  # fmt: skip
def test_a_malformed_scenario_is_one_error_naming_the_scenario_and_the_key(change, message):
    tables = _tables(PLAN)
    for key, value in change.items():
        if value is None:
            tables[0].pop(key, None)
        else:
            tables[0][key] = value
    with pytest.raises(ScenarioPlanError) as caught:
        from_tables(tables, "plan.toml")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_two_scenarios_of_one_name_are_refused():
    tables = _tables(PLAN)
    tables[1]["name"] = "browsing"
    with pytest.raises(ScenarioPlanError, match="scenario name 'browsing' is used twice"):
        from_tables(tables, "plan.toml")


def test_a_profile_holds_scenarios_and_a_bad_one_is_a_config_error_naming_its_key(tmp_path):
    config = tmp_path / "loadwise.toml"
    config.write_text("[profiles.shop]\nhost = 'http://127.0.0.1:1'\n" + PLAN.replace("[[scenario]]", "[[profiles.shop.scenario]]"))
    profile = load_profile("shop", config)
    from loadwise.config import scenarios_of

    assert [s.name for s in scenarios_of(profile)] == ["browsing", "checkout"]
    config.write_text("[profiles.shop]\n[[profiles.shop.scenario]]\nname = 'x'\nshape = 'ramp'\n")
    with pytest.raises(ConfigError, match=r"profiles.shop.scenario\[0\]: scenario 'x': `duration` is missing"):
        load_profile("shop", config)


def test_seats_keep_the_weights_and_never_shrink_a_class_as_the_count_grows():
    weights = {"A": 3.0, "B": 1.0, "C": 0.0}
    previous = dict.fromkeys(weights, 0)
    for n in range(0, 41):
        now = seats(n, weights)
        assert sum(now.values()) == n and now["C"] == 0
        assert all(now[k] >= previous[k] for k in weights)  # house-monotone: no class loses a user as n grows
        previous = now
    assert seats(40, weights) == {"A": 30, "B": 10, "C": 0}


def test_split_shares_by_capacity_never_beyond_it_and_adds_up():
    assert split(5, {"w1": 3, "w2": 3}) in ({"w1": 3, "w2": 2}, {"w1": 2, "w2": 3})
    assert split(4, {"w1": 1, "w2": 3}) == {"w1": 1, "w2": 3}
    assert split(9, {"w1": 1, "w2": 3}) == {"w1": 1, "w2": 3}  # more than they hold: all they hold
    assert split(3, {"w1": 0, "w2": 0}) == {"w1": 0, "w2": 0}
    for n in range(0, 12):
        shares = split(n, {"a": 4, "b": 5, "c": 2})
        assert sum(shares.values()) == min(n, 11) and shares["c"] <= 2 and shares["a"] <= 4


def test_each_class_is_spread_evenly_over_the_workers_where_locust_would_not():
    """Locust's dispatcher cycles the workers whatever the class: two classes of two users on two
    workers land one class on each worker, so one scenario would run on one worker only."""
    from locust import User
    from locust.dispatch import UsersDispatcher
    from locust.runners import WorkerNode

    from loadwise.engine.mix import EvenDispatcher

    def spread(dispatcher_class: type) -> dict[str, dict[str, int]]:
        a = type("a.A", (User,), {"fixed_count": 2, "abstract": False})
        b = type("b.B", (User,), {"fixed_count": 2, "abstract": False})
        dispatcher = dispatcher_class(worker_nodes=[WorkerNode("w1"), WorkerNode("w2")], user_classes=[a, b])
        dispatcher.new_dispatch(4, 100.0)
        return list(dispatcher)[-1]

    assert spread(UsersDispatcher) == {"w1": {"a.A": 2, "b.B": 0}, "w2": {"a.A": 0, "b.B": 2}}
    assert spread(EvenDispatcher) == {"w1": {"a.A": 1, "b.B": 1}, "w2": {"a.A": 1, "b.B": 1}}


def test_thresholds_name_a_scenario_and_judge_its_own_statistics():
    summary = RunSummary.from_dict({
        "run_id": "r", "status": "completed", "duration_s": 10, "overall": {"requests": 300, "p95_ms": 50.0},
        "endpoints": [{"method": "GET", "name": "/checkout", "requests": 100, "p95_ms": 80.0}],
        "scenarios": [{"name": "checkout", "duration_s": 5, "overall": {"requests": 100, "p95_ms": 80.0, "rps": 20.0},
                       "endpoints": [{"method": "GET", "name": "/checkout", "requests": 100, "p95_ms": 80.0}]}],
    })  # fmt: skip
    results = evaluate([parse(t) for t in ("scenario=checkout: p95<60ms", "scenario=checkout: rps>=20", "p95<60ms",
                                           "scenario=checkout: GET /checkout: p95<100ms", "scenario=browse: p95<60ms")],
                       summary)  # fmt: skip
    assert [r.passed for r in results] == [False, True, True, True, False]
    assert results[0].describe() == "scenario=checkout: p95 80.0 ms (limit < 60.0 ms) FAILED"
    assert results[4].describe().startswith("scenario=browse: p95 not measured")


# -- real runs --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx():
    server = Nginx().start()
    yield server
    server.stop()


def _per_scenario(run: Path) -> tuple[pd.DataFrame, dict, dict]:
    run_dir = RunDir(run)
    return run_dir.read_intervals(), json.loads((run / "summary.json").read_text()), json.loads((run / "run.json").read_text())


def _check_run(run: Path, nginx: Nginx) -> None:
    intervals, summary, info = _per_scenario(run)
    assert info["status"] == "completed" and info["shape"] == "scenarios"
    served = nginx.served()
    browse = sum(n for (method, path), n in served.items() if path.startswith("/browse/"))
    checkout = served.get(("GET", "/checkout"), 0)
    by_scenario = {s["name"]: s for s in summary["scenarios"]}
    pools = {c["name"].split(".")[0]: c["pool"] for s in info["scenarios"] for c in s["classes"]}
    recorded = {name: by_scenario[name]["overall"]["requests"] for name in ("browsing", "checkout")}
    # every request each scenario recorded is one nginx served on that scenario's paths, and no other; a request
    # in flight when the stop kills its user reaches nginx but never returns: at most one a user (as elsewhere)
    assert browse > 0 and 0 <= browse - recorded["browsing"] <= pools["browsing"], (browse, recorded)
    assert 0 <= checkout - recorded["checkout"] <= pools["checkout"], (checkout, recorded)
    assert {(e["method"], e["name"]) for e in by_scenario["checkout"]["endpoints"]} == {("GET", "/checkout")}
    assert summary["overall"]["requests"] == sum(recorded.values())
    # the rate scenario: exactly its planned iterations (20/s for 5 s) sent, none dropped, its rate over its own 5 s
    record = next(s for s in info["scenarios"] if s["name"] == "checkout")
    assert record["open_model"]["scheduled"] == record["open_model"]["started"] == checkout == 100
    assert by_scenario["checkout"]["overall"]["dropped_iterations"] == 0
    assert by_scenario["checkout"]["overall"]["rps"] == pytest.approx(20.0, rel=0.05)
    assert by_scenario["browsing"]["tags"] == {"team": "catalog"}
    # each scenario's own shape is visible in its intervals: the ramp climbs, checkout starts 5 s in
    t0 = pd.Timestamp(info["started_at"])
    elapsed = (intervals["start"] - t0).dt.total_seconds()
    browsing = intervals[(intervals["scenario"] == "browsing") & (elapsed < 9)]  # the last second ramps down to the end
    users = pd.to_numeric(browsing["scenario_users"], errors="coerce").dropna().to_numpy()
    assert users[0] <= 2 and users.max() >= 5 and all(b >= a - 0.5 for a, b in zip(users, users[1:]))
    first_checkout = elapsed[intervals["scenario"] == "checkout"].min()
    assert 4.0 <= first_checkout <= 5.5  # its interval starts at most an interval before its start
    steady = intervals[(intervals["scenario"] == "checkout") & (elapsed >= 6) & (elapsed < 9)]
    # 20 arrivals a second; a request is counted when it ends, so one may fall in the next second
    assert len(steady) == 3 and all(18 <= n <= 22 for n in steady["requests"]), list(steady["requests"])


@pytest.mark.slow
def test_two_scenarios_run_at_once_and_each_count_equals_nginx_split_by_path(tmp_path, nginx):
    nginx.clear()
    (tmp_path / "shop.py").write_text(LOCUSTFILE)
    (tmp_path / "plan.toml").write_text(PLAN)
    result = run_cli("run", str(tmp_path / "shop.py"), "--scenarios", str(tmp_path / "plan.toml"), "--host", nginx.url,
                     "--interval", "1", "--out", str(tmp_path / "runs"), timeout=90)  # fmt: skip
    assert result.code == 0, result.stderr[-2000:]
    run = Path(result.last_line)
    _check_run(run, nginx)
    # the terminal table groups by scenario, each with its own total, then the run's
    assert "browsing: GET /browse/[category]" in result.stdout and "checkout: all" in result.stdout
    assert "iterations (checkout): 100 scheduled, 100 started" in result.stdout
    assert (run / "scenarios.json").exists()  # the plan every Locust process read stays with the run
    # thresholds per scenario, judged by the gate on the stored run
    gate = run_cli("gate", str(run), "--threshold", "scenario=checkout: rps>=19", "--threshold",
                   "scenario=browsing: p95<0.001ms", "--json")  # fmt: skip
    assert gate.code == 1, gate.stderr
    verdicts = {c["threshold"]: c["passed"] for c in json.loads(gate.stdout)["thresholds"]}
    assert verdicts == {"scenario=checkout: rps>=19": True, "scenario=browsing: p95<0.001ms": False}


@pytest.mark.slow
def test_two_scenarios_from_a_locustfile_run_distributed_and_count_equal_nginx(tmp_path, nginx):
    """`--workers 2`, the plan in Python in the locustfile: each worker runs its share of both."""
    nginx.clear()
    (tmp_path / "shop.py").write_text(LOCUSTFILE + PYTHON_PLAN)
    result = run_cli("run", str(tmp_path / "shop.py"), "--host", nginx.url, "--workers", "2", "--interval", "1",
                     "--out", str(tmp_path / "runs"), timeout=120)  # fmt: skip
    assert result.code == 0, result.stderr[-2000:]
    run = Path(result.last_line)
    _check_run(run, nginx)
    info = json.loads((run / "run.json").read_text())
    assert len(info["worker_requests"]) == 2 and all(n > 0 for n in info["worker_requests"].values())
    pools = {c["name"]: c["pool"] for s in info["scenarios"] for c in s["classes"]}
    assert pools["browsing.Browser"] == 6 and pools["checkout.Buyer"] >= 4


@pytest.mark.slow
def test_an_abort_rule_naming_a_scenario_stops_the_run_when_that_scenario_fails(tmp_path, nginx):
    nginx.clear()
    failing = LOCUSTFILE.replace('self.client.get("/checkout")', 'self.client.get("/fail")')
    (tmp_path / "shop.py").write_text(failing)
    plan = PLAN.replace('duration = "10s"', 'duration = "30s"').replace('duration = "5s"', 'duration = "25s"')
    (tmp_path / "plan.toml").write_text(plan)
    result = run_cli("run", str(tmp_path / "shop.py"), "--scenarios", str(tmp_path / "plan.toml"), "--host", nginx.url,
                     "--interval", "1", "--abort-on", "scenario=browsing: error_rate<1%", "--abort-on",
                     "scenario=checkout: error_rate<1% over 2s", "--out", str(tmp_path / "runs"), timeout=90)  # fmt: skip
    assert result.code == 1, result.stderr[-2000:]
    info = json.loads((Path(result.last_line) / "run.json").read_text())
    assert info["aborted"]["threshold"] == "scenario=checkout: error_rate<1% over 2s"
    # checkout starts failing at 5 s: the run stops within its 2 s window plus an interval and a flush
    assert 5.0 <= info["aborted"]["elapsed_s"] <= 9.0
    load_s = (pd.Timestamp(info["load_ended_at"]) - pd.Timestamp(info["started_at"])).total_seconds()
    assert load_s < 12, load_s


def test_a_bad_plan_and_a_shape_beside_scenarios_are_one_line_errors(tmp_path):
    (tmp_path / "shop.py").write_text(LOCUSTFILE)
    (tmp_path / "plan.toml").write_text(PLAN.replace('shape = "ramp"', 'shape = "zigzag"'))
    bad = run_cli("run", str(tmp_path / "shop.py"), "--scenarios", str(tmp_path / "plan.toml"), "--host", "http://127.0.0.1:9")
    assert bad.code == 2 and "unknown shape 'zigzag'" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "plan.toml").write_text(PLAN)
    both = run_cli("run", str(tmp_path / "shop.py"), "--scenarios", str(tmp_path / "plan.toml"), "--shape", "ramp",
                   "--host", "http://127.0.0.1:9")  # fmt: skip
    assert both.code == 2 and "each scenario has its own shape" in both.stderr and "Traceback" not in both.stderr


@pytest.mark.slow
def test_a_scenario_naming_a_class_its_locustfile_lacks_is_a_one_line_error(tmp_path):
    (tmp_path / "shop.py").write_text(LOCUSTFILE)
    (tmp_path / "plan.toml").write_text(PLAN.replace('classes = ["Buyer"]', 'classes = ["Shopper"]'))
    result = run_cli("run", str(tmp_path / "shop.py"), "--scenarios", str(tmp_path / "plan.toml"), "--host",
                     "http://127.0.0.1:9", "--out", str(tmp_path / "runs"), timeout=60)  # fmt: skip
    assert result.code == 2, (result.stdout, result.stderr)
    assert "scenario 'checkout'" in result.stderr and "no User class Shopper (it has: Browser, Buyer)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_profiles_scenarios_run_built_in_locustfiles_against_the_demo_shop(tmp_path, target):
    """Two built-in locustfiles as two scenarios of a loadwise.toml profile: browsing users and a
    constant rate of checkouts 2 s later. The shop's own counters are the truth: it served every
    request the run recorded, and its orders are exactly the checkout scenario's iterations."""
    from conftest import counter_by_label, served_requests

    config = tmp_path / "loadwise.toml"
    config.write_text(textwrap.dedent(f"""
        [profiles.shop]
        host = "{target.url}"

        [[profiles.shop.scenario]]
        name = "browsing"
        locustfile = "browse"
        shape = "constant"
        users = 3
        duration = "6s"

        [[profiles.shop.scenario]]
        name = "buying"
        locustfile = "checkout"
        shape = "constant-rate"
        rate = 3
        users = 2
        start = "2s"
        duration = "3s"
    """))
    served_before = served_requests(target)
    orders_before = counter_by_label(target, "http_requests_total", "route").get("/orders", 0.0)
    result = run_cli("run", "browse", "--profile", "shop", "--loadwise-config", str(config), "--interval", "1",
                     "--out", str(tmp_path / "runs"), timeout=90)  # fmt: skip
    assert result.code == 0, result.stderr[-2000:]
    run = Path(result.last_line)
    summary = json.loads((run / "summary.json").read_text())
    by_scenario = {s["name"]: s for s in summary["scenarios"]}
    served = served_requests(target) - served_before
    assert by_scenario["browsing"]["overall"]["requests"] + by_scenario["buying"]["overall"]["requests"] == served
    assert summary["overall"]["requests"] == served
    orders = counter_by_label(target, "http_requests_total", "route").get("/orders", 0.0) - orders_before
    buying_orders = next(e for e in by_scenario["buying"]["endpoints"] if e["method"] == "POST")
    assert buying_orders["requests"] == orders == by_scenario["buying"]["overall"]["iterations_started"] == 9
    assert not any(e["method"] == "POST" for e in by_scenario["browsing"]["endpoints"])  # browse never orders


def test_a_locustfiles_own_scenarios_list_is_read_and_any_other_scenarios_variable_left_alone(tmp_path):
    from loadwise.engine.entry import planned_scenarios

    planned = tmp_path / "planned.py"
    planned.write_text(LOCUSTFILE + PYTHON_PLAN)
    assert [s.name for s in planned_scenarios(None, str(planned))] == ["browsing", "checkout"]
    unrelated = tmp_path / "unrelated.py"
    unrelated.write_text(LOCUSTFILE + "\nscenarios = ['login', 'search']  # the locustfile's own list\n")
    assert planned_scenarios(None, str(unrelated)) is None
    assert planned_scenarios(None, "browse") is None
