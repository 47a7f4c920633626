"""`loadwise gate`: thresholds, the bootstrap comparison, history and change points, outputs."""

import json
import re
from typing import Any

import numpy as np
import pytest
from conftest import assert_one_line_error
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic import make_run

from loadwise.analysis import histogram
from loadwise.analysis.changepoints import change_points, newest_point
from loadwise.analysis.regression import REGRESSION, Series, compare_series
from loadwise.analysis.thresholds import ThresholdError, parse


@pytest.mark.parametrize(
    ("text", "metric", "limit", "endpoint"),
    [("p95<300ms", "p95_ms", 300, None), ("p99<=1s", "p99_ms", 1000, None), ("mean<100ms", "mean_ms", 100, None),
     ("error_rate<1%", "error_rate", 0.01, None), ("rps>=200", "rps", 200, None),
     ("GET /products/[id]: p95<50ms", "p95_ms", 50, "/products/[id]"), ("/a:b: max < 2 s", "max_ms", 2000, "/a:b")],
)  # fmt: skip
def test_threshold_parser_accepts(text, metric, limit, endpoint):
    t = parse(text)
    assert (t.metric, t.limit, t.endpoint) == (metric, pytest.approx(limit), endpoint)


@pytest.mark.parametrize(
    ("text", "where"),
    [("p95<<300ms", "position 5"), ("p96<3ms", "position 1"), ("error_rate<1", "needs a unit"),
     ("p95<3kg", "position 6"), ("rps>=20ms", "does not fit"), (": p95<1ms", "expected an endpoint"), ("", "position 1")],
)  # fmt: skip
def test_threshold_parser_names_the_mistake(text, where):
    with pytest.raises(ThresholdError, match=where):
        parse(text)


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_threshold_parser_refuses_any_text_in_one_line_naming_a_position(prefix):
    """Whatever comes before it, a comparison with no number is no threshold: the parser must
    raise ThresholdError (never another exception, never a result), in one line quoting the
    text and naming a position inside it."""
    text = prefix + " <<"  # the text after the last ':' ends in an operator, so it cannot match
    one_line = rf"\Athreshold {re.escape(repr(text))}: [^\n]+ at position (\d+)\Z"
    with pytest.raises(ThresholdError, match=one_line) as caught:
        parse(text)
    position = int(re.search(r"(\d+)\Z", str(caught.value))[0])
    assert 1 <= position <= len(text) + 1


_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}  # a name starting with one reads as METHOD NAME
_ENDPOINTS = st.one_of(
    st.none(),
    st.tuples(st.sampled_from(["", "GET ", "post "]),
              st.text(st.characters(blacklist_categories=["Cs", "Cc", "Zs"]), min_size=1).filter(
                  lambda name: name.strip() == name and name.split(" ", 1)[0].upper() not in _METHODS)),
)  # fmt: skip
_LIMITS = st.sampled_from([("p95", "ms", 1.0), ("p99", "s", 1000.0), ("mean", "", 1.0), ("error_rate", "%", 0.01),
                           ("rps", "", 1.0), ("failures", "", 1.0)])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_ENDPOINTS, _LIMITS, st.sampled_from(["<", "<=", ">", ">="]), st.decimals(0, 10_000, places=2), st.sampled_from(["", " "]))
def test_threshold_parser_reads_every_well_formed_threshold(endpoint, limit, op, number, space):
    """The other side of the property above: every text the grammar allows parses, to the
    statistic, comparison, limit (converted to the summary key's unit) and endpoint written."""
    statistic, unit, factor = limit
    if statistic == "error_rate":
        number = min(number, 100)
    condition = f"{statistic}{space}{op}{space}{number}{space}{unit}"
    text = condition if endpoint is None else f"{endpoint[0]}{endpoint[1]}: {condition}"
    t = parse(text)
    assert (t.statistic, t.op) == (statistic, op)
    assert t.limit == pytest.approx(float(number) * factor)
    if endpoint is None:
        assert (t.endpoint, t.method) == (None, None)
    else:
        assert t.endpoint == endpoint[1] and t.method == (endpoint[0].strip().upper() or None)


def _series(rng, scale=1.0, n=60, per=50):
    """A run's intervals: lognormal latencies with an autocorrelated (AR(1)) drift, as real runs have."""
    drift, rows = 0.0, []
    for _ in range(n):
        drift = 0.6 * drift + rng.normal(0, 0.05)
        rows.append(histogram.counts_of_ms(rng.lognormal(np.log(20) + drift, 0.5, per) * scale))
    dense = np.array(rows)
    used = np.flatnonzero(dense.sum(axis=0))
    return Series(dense[:, used].astype(float), histogram.bucket_upper_us(used) / 1000, np.full(n, per, float),
                  np.zeros(n), 5.0)  # fmt: skip


@pytest.mark.slow
def test_simulated_runs_false_alarms_and_power():
    rng = np.random.default_rng(2026)
    trials = 200
    alarms = sum(compare_series(_series(rng), _series(rng), "p95_ms", "overall", resamples=500, seed=i).decision == REGRESSION
                 for i in range(trials))  # fmt: skip
    caught = sum(compare_series(_series(rng), _series(rng, 1.2), "p95_ms", "overall", resamples=500, seed=i).decision == REGRESSION
                 for i in range(trials))  # fmt: skip
    print(f"A/A flagged as regression: {alarms}/{trials}; 20% p95 slowdown caught: {caught}/{trials}")
    assert alarms <= 0.05 * trials
    assert caught >= 0.95 * trials


def test_change_points_find_a_step_and_ignore_one_outlier():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        step = np.r_[rng.normal(100, 2, 12), rng.normal(112, 2, 10)]
        found = change_points(step, seed=seed)
        assert len(found) == 1 and abs(found[0] - 12) <= 1, (seed, found)
        spike = rng.normal(100, 2, 22)
        spike[9] = 140
        assert change_points(spike, seed=seed) == []


def test_newest_point_against_the_current_regime():
    rng = np.random.default_rng(3)
    history = list(rng.normal(100, 2, 8)) + list(rng.normal(120, 2, 8))  # an old step: the regime is ~120
    assert newest_point(history + [121.0]).worse_regime is False  # as usual for the new regime
    assert newest_point(history + [140.0]).worse_regime is True
    assert newest_point(history + [95.0]).worse_regime is False  # better is not a failure
    assert newest_point(list(rng.normal(50, 1, 8)) + [40.0], higher_is_worse=False).worse_regime is True  # rps dropped


def _gate_json(cli_here, *args):
    """`loadwise gate ... --json` in this process (dozens of calls; a subprocess each is slow)."""
    result = cli_here("gate", *args, "--json")
    return result.code, json.loads(result.stdout)


def _history_runs(tmp_path, latencies):
    paths = []
    for i, median in enumerate(latencies):
        run = make_run(tmp_path / f"2026010{i}T000000Z-synthetic", {("GET", "/a"): median, ("GET", "/b"): 3.0},
                       seconds=30, seed=i)  # fmt: skip
        info = run.read_info()
        info.started_at = f"2026-01-0{i + 1}T00:00:00Z"
        run.write_info(info)
        paths.append(str(run.path))
    return paths


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_history_gate_same_on_sqlite_and_postgres(tmp_path, store, request, cli_here):
    location = str(tmp_path / "history.db") if store == "sqlite" else request.getfixturevalue("postgres_dsn")
    if store == "postgres":  # a fresh database per test on the shared server
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS loadwise_points")
            conn.execute("DROP TABLE IF EXISTS loadwise_runs")
    paths = _history_runs(tmp_path, [10.0] * 7 + [14.0])
    outcomes = []
    for path in paths:
        code, out = _gate_json(cli_here, path, "--history", location)
        assert code in (0, 1)
        outcomes.append(out)
    assert all(o["passed"] for o in outcomes[:-1])
    last = outcomes[-1]
    assert not last["passed"]
    failed = {(h["endpoint"], h["metric"]) for h in last["history"] if h["decision"] == "regression"}
    assert ("GET /a", "p95_ms") in failed and ("GET /b", "p95_ms") not in failed
    listing = cli_here("history", "list", "--history", location)
    assert listing.code == 0 and len(listing.stdout.strip().splitlines()) == 8
    trend = cli_here("history", "trend", "--history", location, "--endpoint", "GET /a")
    assert trend.code == 0 and "p95_ms over 8 run(s)" in trend.stdout


def test_history_stores_agree(tmp_path, postgres_dsn, cli_here):
    """The two stores give the same decisions for the same runs."""
    import psycopg

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS loadwise_points")
        conn.execute("DROP TABLE IF EXISTS loadwise_runs")
    paths = _history_runs(tmp_path, [10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 13.0])
    decisions = {}
    for store in (str(tmp_path / "h.db"), postgres_dsn):
        for path in paths:
            _, out = _gate_json(cli_here, path, "--history", store)
        decisions[store] = [(h["endpoint"], h["metric"], h["decision"], round(h["newest"], 6)) for h in out["history"]]
    assert decisions[str(tmp_path / "h.db")] == decisions[postgres_dsn]


def test_history_writes_are_all_or_nothing(tmp_path, monkeypatch):
    from loadwise.analysis import history as history_module
    from loadwise.analysis.rundir import RunDir

    run = make_run(tmp_path / "r", {("GET", "/a"): 5.0}, seconds=10)
    store = history_module.History(str(tmp_path / "h.db"))

    def broken(self, sql, rows):
        raise RuntimeError("disk full")

    monkeypatch.setattr(history_module._Cursor, "executemany", broken)
    with pytest.raises(RuntimeError):
        store.add(RunDir(run.path).read_info(), RunDir(run.path).read_summary())
    assert store.runs() == []  # the run row was rolled back with the points


@pytest.mark.slow
def test_bad_gate_input_is_exit_2(tmp_path, cli_here):
    run = make_run(tmp_path / "r", {("GET", "/a"): 5.0}, seconds=10)
    cases = [
        (["gate", str(run.path), "--baseline", str(tmp_path / "missing")], "no such run directory"),
        (["gate", str(run.path), "--threshold", "p95<"], "position"),
        (["gate", str(run.path), "--window", "last-step"], "needs a step run"),
    ]
    (tmp_path / "corrupt.db").write_text("this is not a database" * 50)
    cases.append((["gate", str(run.path), "--history", str(tmp_path / "corrupt.db")], "not a usable history database"))
    empty = tmp_path / "empty"
    from loadwise.analysis.rundir import RunDir, RunInfo

    RunDir(empty).create(RunInfo(id="empty", scenario="synthetic", host="http://127.0.0.1:9"))
    cases.append((["gate", str(empty)], "no requests"))
    other = make_run(tmp_path / "other", {("GET", "/a"): 5.0}, seconds=10)
    info = other.read_info()
    info.scenario = "checkout"
    other.write_info(info)
    cases.append((["gate", str(run.path), "--baseline", str(other.path)], "not comparable"))
    for args, needle in cases:
        result = cli_here(*args)
        assert result.code == 2, (args, result.stdout, result.stderr)
        assert_one_line_error(result, needle)
    forced = cli_here("gate", str(run.path), "--baseline", str(other.path), "--force")
    assert forced.code in (0, 1)


def test_window_last_step_and_warmup(tmp_path):
    from loadwise.analysis.rundir import RunDir
    from loadwise.analysis.windows import select, window_summary

    run = make_run(tmp_path / "s", {("GET", "/a"): 5.0}, seconds=60)
    info = run.read_info()
    info.shape, info.shape_params = "step", {"users": 10, "duration_s": 60, "steps": 3}
    intervals = RunDir(run.path).read_intervals()
    last = select(info, intervals, "last-step")
    assert last["start"].nunique() == 4  # 40..60 s: intervals 40, 45, 50, 55
    warm = select(info, intervals, "all", warmup_s=10)
    assert warm["start"].nunique() == 10
    assert window_summary(info, warm).overall.rps == pytest.approx(20, rel=0.05)


def _loadwise_commands(script: str) -> list[tuple[list[str], list[str]]]:
    """Each `loadwise ...` command of a step's shell script: the argv after `loadwise`, and
    the shell tokens that follow it on its line (such as `|| true`).

    Line continuations are joined and each line is tokenized as a shell would (quotes,
    comments), with operators such as `|`, `||`, `$(`, `)` and `>>` as tokens of their own,
    so a command ends where the shell would end it.
    """
    import shlex

    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        for i, token in enumerate(tokens):
            if token == "loadwise":
                end = next((j for j in range(i + 1, len(tokens)) if set(tokens[j]) <= set("();<>|&")), len(tokens))
                commands.append((tokens[i + 1:end], tokens[end:]))
    return commands


def test_ci_workflow_example_gates_a_pull_request():
    """deploy/ci/github-actions.yml, read as GitHub Actions reads it: a job whose steps run
    loadwise with arguments loadwise's own parser accepts, hand the run directory from the
    run step to the gate, let the gate's exit code fail the job, and still publish the
    report, the JUnit XML and the Markdown summary (and keep the history) when it fails."""
    import yaml

    from conftest import REPO

    from loadwise.cli.main import build_parser

    workflow = yaml.safe_load((REPO / "deploy/ci/github-actions.yml").read_text())
    # PyYAML reads the bare key `on` as True (YAML 1.1); GitHub reads it as "on".
    triggers = workflow.get("on", workflow.get(True))
    assert "pull_request" in triggers
    [job] = workflow["jobs"].values()
    steps = job["steps"]
    for step in steps:
        assert ("run" in step) != ("uses" in step), step  # each step does one thing
    parser = build_parser()

    def loadwise_steps(command: str) -> list[tuple[int, dict, Any, list[str]]]:
        found = []
        for index, step in enumerate(steps):
            for argv, after in _loadwise_commands(step.get("run", "")):
                if argv[:1] == [command]:
                    try:
                        found.append((index, step, parser.parse_args(argv), after))
                    except SystemExit:
                        pytest.fail(f"step {step.get('name')!r}: loadwise refuses `loadwise {' '.join(argv)}`")
        return found

    [(run_at, run_step, run, _)] = loadwise_steps("run")
    [(gate_at, gate_step, gate, after_gate)] = loadwise_steps("gate")
    [(report_at, report_step, report, _)] = loadwise_steps("report")
    assert run_at < gate_at < report_at

    # The run directory (the run's last stdout line) reaches the gate and the report as a step output.
    assert "$GITHUB_OUTPUT" in run_step["run"] and "dir=" in run_step["run"] and "tail -n 1" in run_step["run"]
    run_dir = "${{ steps.%s.outputs.dir }}" % run_step["id"]
    assert gate.run == run_dir and report.run == run_dir
    assert run.host and run.scrape, "a run against the service, its /metrics scraped"

    # The gate's exit code is the step's: nothing swallows it, and the job does not go on.
    assert "continue-on-error" not in gate_step and "continue-on-error" not in job
    assert "if" not in gate_step  # runs only after a successful run step
    assert "||" not in after_gate and "set +e" not in gate_step["run"]
    assert gate_step.get("shell", "bash") == "bash"  # GitHub's bash runs with -e
    thresholds = [parse(text) for text in gate.threshold]
    assert {t.metric for t in thresholds} >= {"p95_ms", "error_rate"}
    assert gate.warmup > 0

    # After a failing gate: the report, the step summary, the artifacts and the history still happen.
    later = steps[gate_at + 1:]
    assert report_step["if"] == "always()"
    summary_steps = [s for s in later if f"cat {gate.markdown}" in s.get("run", "") and "$GITHUB_STEP_SUMMARY" in s["run"]]
    assert summary_steps and all(s.get("if") == "always()" for s in summary_steps)
    [upload] = [s for s in later if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["if"] == "always()"
    uploaded = [line.strip() for line in upload["with"]["path"].splitlines()]
    assert {run_dir, str(gate.junit), str(gate.markdown)} <= set(uploaded)

    # The history the gate compares with is restored before it and saved after it, the same file.
    [restore] = [s for s in steps[:gate_at] if s.get("uses", "").startswith("actions/cache/restore@")]
    [save] = [s for s in later if s.get("uses", "").startswith("actions/cache/save@")]
    assert restore["with"]["path"] == save["with"]["path"] == gate.history
    assert "always()" in save["if"]  # a regression's run joins the history too
    assert save["with"]["key"].startswith(restore["with"]["restore-keys"].split()[0])


def test_an_interrupted_run_does_not_pass_the_gate(tmp_path, cli_here):
    run = make_run(tmp_path / "cut", {("GET", "/a"): 5.0}, seconds=10, status="interrupted")
    result = cli_here("gate", str(run.path), "--json")
    assert result.code == 1
    assert json.loads(result.stdout)["failures"][0].startswith("the run is interrupted")


def test_the_history_judges_the_request_rate_only_for_a_saturated_run():
    """Under a closed model with think time the users set the rate: a same-build run whose rate
    fell 12 % (seen on a real same-build history) is not a regression of the service unless the
    run was saturated, as in the baseline comparison."""
    from loadwise.analysis.gate import history_checks

    series = {("overall", "rps"): [37.6, 37.1, 38.0, 37.4, 37.8, 33.2]}
    (unsaturated,) = history_checks(series, judge_rate=False)
    assert unsaturated.decision == "not judged" and "not saturated" in unsaturated.describe()
    (saturated,) = history_checks(series, judge_rate=True)
    assert saturated.decision == "regression"


def test_the_history_does_not_judge_a_percentile_from_too_few_requests():
    """An 8 s run's overall p99 rests on ~3 of its 330 requests: not judged (n < 500), as in the baseline comparison."""
    from loadwise.analysis.gate import history_checks

    series = {("overall", "p99_ms"): [15.2, 15.9, 14.8, 16.1, 15.5, 24.3]}
    (check,) = history_checks(series, requests={"overall": 330})
    assert check.decision == "not judged" and "too few requests (n=330, needs 500)" in check.describe()
    assert history_checks(series, requests={"overall": 5000})[0].decision == "regression"


def test_judge_is_the_gates_entry_point_and_the_cli_prints_what_it_returns(tmp_path, cli_here):
    """The Python entry point and `loadwise gate --json` give the same verdict: the CLI only parses and prints."""
    from loadwise.analysis import gate
    from loadwise.analysis.gate_settings import GateSettings

    base = make_run(tmp_path / "20260101T000000Z-base", {("GET", "/a"): 10.0}, seconds=60, seed=1)
    slow = make_run(tmp_path / "20260102T000000Z-slow", {("GET", "/a"): 40.0}, seconds=60, seed=2)  # beyond the one-run allowances
    settings = GateSettings(resamples=200)
    result = gate.judge(gate.load_run(str(slow.path), settings), settings, [parse("p95<1s")],
                        [gate.load_run(str(base.path), settings)])  # fmt: skip
    assert not result.passed and any("regression" in f for f in result.failures)
    code, printed = _gate_json(cli_here, str(slow.path), "--baseline", str(base.path), "--threshold", "p95<1s",
                               "--resamples", "200")  # fmt: skip
    assert code == 1 and printed["failures"] == result.failures


def test_the_gates_defaults_are_declared_once():
    """The comparison functions' defaults are GateSettings' (one declaration, read by --help and the API alike)."""
    import inspect

    from loadwise.analysis.gate_settings import GateSettings

    defaults = GateSettings()
    series = inspect.signature(compare_series).parameters
    assert (series["min_effect"].default, series["resamples"].default, series["min_delta_ms"].default) == (
        defaults.min_effect, defaults.resamples, defaults.min_delta)
    assert inspect.signature(newest_point).parameters["min_effect"].default == defaults.min_effect
    with pytest.raises(Exception, match="at least 100"):
        GateSettings(resamples=50)
