"""Rate shapes (the open model) as pure plans: arrival counts, laws, shares, validation; and the
recorder's two views of latency (from the intended start, and service time alone)."""

import math

import numpy as np
import pytest
from scipy import stats

from loadwise.engine.recorder import Recorder
from loadwise.analysis import histogram
from loadwise.shapes.base import ShapeError
from loadwise.shapes.catalog import build_shape
from loadwise.shapes.rates import ArrivalOptions


def rate_shape(name, rate=100.0, duration=10.0, users=5, params=None, **options):
    return build_shape(name, users, duration, params=params, arrivals=ArrivalOptions(rate=rate, **options))


def test_constant_rate_uniform_arrivals_are_the_plan_exactly():
    times = list(rate_shape("constant-rate", rate=200, duration=6).arrival_times())
    assert len(times) == 1200 and times[0] == 0.0
    assert np.allclose(np.diff(times), 1 / 200)


def test_step_rate_holds_each_rate_for_its_step():
    shape = rate_shape("step-rate", rate=400, duration=20, params={"steps": "4"})
    times = np.array(list(shape.arrival_times()))
    per_step = np.histogram(times, bins=[0, 5, 10, 15, 20])[0]
    assert list(per_step) == [500, 1000, 1500, 2000]
    assert shape.planned() == 5000 and [shape.step_rate(k) for k in range(4)] == [100, 200, 300, 400]


def test_ramping_rate_follows_its_stages():
    shape = rate_shape("ramping-rate", rate=None, duration=30, params={"stages": "10s:100,10s:100,5s:0"})
    assert shape.rate == 100  # the stages give the peak
    assert [shape.rate_at(t) for t in (0, 5, 15, 22.5, 27)] == [0, 50, 100, 50, 0]
    assert shape.planned() == pytest.approx(500 + 1000 + 250)
    times = np.array(list(shape.arrival_times()))
    assert abs(len(times) - shape.planned()) <= 1
    # ramp-up third: 50 arrivals in the first 5 s (area under the ramp), 150 in the next 5
    assert abs(np.sum(times < 5) - 125) <= 1 and abs(np.sum(times < 10) - 500) <= 1


def test_poisson_arrivals_pass_kolmogorov_smirnov_and_keep_the_rate():
    shape = rate_shape("constant-rate", rate=100, duration=60, arrivals="poisson", seed=7)
    gaps = np.diff(list(shape.arrival_times()))
    assert stats.kstest(gaps, "expon", args=(0, 1 / 100)).pvalue > 0.01
    assert abs(len(gaps) + 1 - 6000) < 4 * math.sqrt(6000)
    # a ramp by time change: Lambda(t_k) - Lambda(t_k-1) is Exp(1)
    ramp = rate_shape("ramping-rate", rate=200, duration=30, arrivals="poisson", seed=3)
    marks = np.diff([ramp.planned(t) for t in ramp.arrival_times()])
    assert stats.kstest(marks, "expon").pvalue > 0.01
    assert list(shape.arrival_times())[:5] == list(rate_shape("constant-rate", rate=100, duration=60, arrivals="poisson",
                                                                       seed=7).arrival_times())[:5]  # seeded


@pytest.mark.parametrize("arrivals", ["uniform", "poisson"])
def test_shares_split_one_plan_exactly(arrivals):
    shape = rate_shape("step-rate", rate=300, duration=9, params={"steps": "3"}, arrivals=arrivals, seed=11)
    whole = list(shape.arrival_times())
    shares = [list(shape.arrival_times(share, 3)) for share in range(3)]
    assert sorted(t for share in shares for t in share) == whole
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("constant-rate", {"rate": None}, "constant-rate needs --rate R"),
        ("constant-rate", {"rate": -5}, "rate must be a positive number"),
        ("constant-rate", {"max_users": 2}, "--max-users 2 is below the pre-spawned pool --users 5"),
        ("constant-rate", {"arrivals": "bursty"}, "arrivals must be one of uniform, poisson"),
        ("ramping-rate", {"params": {"stages": "10s-100"}}, "stage '10s-100' is not DURATION:RATE"),
        ("ramping-rate", {"params": {"stages": "10s:500"}}, "the stages reach 500/s, above --rate 100"),
        ("step-rate", {"params": {"steps": "0"}}, "steps must be at least 1"),
    ],
)
def test_bad_rate_shapes_name_the_bad_input(name, kwargs, message):
    with pytest.raises(ShapeError, match=message.replace("(", r"\(")):
        rate_shape(name, **kwargs)


def test_rate_is_refused_on_a_user_shape():
    with pytest.raises(ShapeError, match="--rate applies to the rate shapes"):
        build_shape("constant", 10, 60, arrivals=ArrivalOptions(rate=50))


def test_recorder_keeps_intended_start_latency_and_service_time_apart():
    recorder = Recorder(1.0)
    recorder.measure_intended()
    for lateness in (0.0, 500.0, 1000.0):
        recorder.record("GET", "/a", 10.0, 2, None, 100.2, lateness_ms=lateness)
    (row,) = recorder.close(before=102.0)
    assert row["max_ms"] == 1010.0 and row["mean_ms"] == pytest.approx(510.0)
    service = histogram.percentiles_from_counts(histogram.merged_counts([row["service_hdr"]]), [50, 100])
    assert service == [pytest.approx(10.0, rel=0.01)] * 2


def test_iteration_counts_close_per_interval_and_survive_a_worker_report():
    worker, master = Recorder(1.0), Recorder(1.0)
    worker.measure_intended()
    worker.count_iterations("scheduled", 100.1, n=3)
    worker.count_iterations("started", 100.2, lateness_ms=2.0)
    worker.count_iterations("started", 100.3, lateness_ms=40.0)  # late: beyond LATE_AFTER_MS
    worker.count_iterations("dropped", 101.5)
    master.absorb(worker.drain())
    rows = master.close_iterations(before=102.0)
    assert [(r["scheduled"], r["started"], r["late"], r["dropped"]) for r in rows] == [(3, 2, 1, 0), (0, 0, 0, 1)]
    assert rows[0]["lateness_mean_ms"] == 21.0 and rows[0]["lateness_max_ms"] == 40.0
    assert master.iteration_totals == {"scheduled": 3, "started": 2, "late": 1, "dropped": 1, "generator_late": 0}


def test_thresholds_name_both_views_of_an_open_model_run():
    from loadwise.analysis.thresholds import evaluate, parse

    from loadwise.analysis.summary import RunSummary

    summary = RunSummary.from_dict({"overall": {"p95_ms": 950.0, "service_p95_ms": 8.0, "dropped_iterations": 12}})
    results = evaluate([parse("p95<100ms"), parse("service_p95<10ms"), parse("dropped_iterations<1")], summary)
    assert [r.passed for r in results] == [False, True, False]


def test_the_live_line_says_late_dropped_and_a_busy_generator():
    from loadwise.engine.stream import Status

    closed = Status(3.0, 10.0, 5, 100.0, 12.0, 300, 0).render()
    assert "late" not in closed and "GENERATOR" not in closed
    open_model = Status(3.0, 10.0, 5, 100.0, 12.0, 300, 0, late=7, dropped=2).render()
    assert open_model.endswith("| late 7 | dropped 2")
    busy = Status(3.0, 10.0, 5, 100.0, 12.0, 300, 0, late=70, dropped=2, generator_late=40).render()
    assert "GENERATOR BUSY: 40 arrivals scheduled late by loadwise itself" in busy
    assert Status.from_rendered(busy) is not None  # a pod's log line still reads back


def test_open_model_users_take_their_arrival_as_each_task_starts():
    """Task functions are wrapped (names and tags kept) to take an arrival right before they run;
    a user with a nested TaskSet waits in wait_time instead (the nested set calls it)."""
    from locust import TaskSet, User, tag, task

    from loadwise.engine.arrivals import as_open_model

    class Shopper(User):
        @tag("browse")
        @task(3)
        def look(self):
            self.seen.append("look")

        @task
        def buy(self):
            self.seen.append("buy")

    class Nested(TaskSet):
        @task
        def inner(self):
            pass

    class Wanderer(User):
        tasks = [Nested]

    taken = []

    held = []

    class FakeArrivals:  # take: hold the next arrival (wait_time sleeps until it); begin: start it
        def take(self, user):
            held.append(user)
            return 0.25

        def begin(self, user):
            taken.append(user)

        def next_iteration(self, user):
            self.take(user)
            self.begin(user)

    wrapped = as_open_model(Shopper)
    assert wrapped.__name__ == "Shopper" and wrapped._loadwise_open_model
    assert sorted(t.__name__ for t in wrapped.tasks) == ["buy", "look", "look", "look"]
    assert {t.__name__: getattr(t, "locust_tag_set", None) for t in wrapped.tasks}["look"] == {"browse"}
    assert len(Shopper.tasks) == 4  # the user's own class is left as it was
    user = object.__new__(wrapped)
    user.environment, user.seen = type("Env", (), {"loadwise_arrivals": FakeArrivals()})(), []
    for t in wrapped.tasks:
        t(user)
    assert len(taken) == 4 and sorted(user.seen) == ["buy", "look", "look", "look"] and not held
    assert wrapped.wait_time(user) == 0.25 and held == [user]  # Locust sleeps until the held arrival is due
    nested = as_open_model(Wanderer)
    assert nested.tasks == [Nested]
    nested_user = object.__new__(nested)
    nested_user.environment = user.environment
    assert nested.wait_time(nested_user) == 0.0 and len(taken) == 5 and len(held) == 2  # waited for an arrival
