"""Open-model iterations on Locust's engine: arrivals at planned times, started by a pool of users.

Under a rate shape every User class of the locustfile runs as `as_open_model(cls)`: before
each task (one iteration) a user takes the next arrival from `Arrivals`, which schedules
them at the shape's planned times; the users' own `wait_time` no longer applies. An
arrival that finds no free user waits (its start lateness counted) until one is free or
the lateness bound passes, then it is dropped and counted: never silently lost. Every
request of an iteration carries that lateness, so the recorder can add it to the service
time: the latency measured from the intended start, which a stalled target cannot hide.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator
from typing import Any

import gevent

from loadwise.engine.recorder import Recorder
from loadwise.shapes.rates import LATE_AFTER_MS, RateShape

SPAWN_RATE_MAX = 100.0  # users started per second while the pool grows (Locust warns above 100 per worker)
COUNT_EVERY_S = 0.05  # how often the arrivals that came due are counted as scheduled
# Arrivals planned in the first second after scheduling starts are not held against the generator:
# the pool is being spawned then, and a worker gets its plan a moment after the master's start time.
START_UP_S = 1.0
_NEVER = float("inf")


class Arrivals:
    """The arrivals of one Locust process (its share of the plan) and its idle users.

    A free user takes the next arrival of the plan itself and sleeps until its planned time:
    one timer per iteration, as a paced user of plain Locust has, and no scheduler to wake,
    queue or hand over to on the request path. Arrivals are taken in order, so an arrival
    that came due while every user was busy goes to the next user to be free (its lateness
    counted), or is dropped past the lateness bound. A second walk of the same plan (it is
    seeded) counts the arrivals as they come due, every COUNT_EVERY_S, so `scheduled` is
    known whether or not a user was free, and scheduled = started + dropped once stopped.
    """

    def __init__(self, shape: RateShape, recorder: Recorder):
        self.shape = shape
        self.recorder = recorder
        self.idle = 0  # users holding an arrival that is not due yet
        self.greenlet: Any = None  # counts the arrivals that came due
        self.share, self.of, self.seed, self.t0, self.steady_from = 0, 1, shape.seed, 0.0, 0.0
        self.pool = shape.users  # the pool size asked of Locust so far (it never shrinks during a run)
        self._plan: Iterator[float] = iter(())  # what users take
        self._due_plan: Iterator[float] = iter(())  # the same plan, walked to count arrivals as they come due
        self._due_next = _NEVER
        self.taken = 0  # arrivals handed to users (started or dropped by them)
        self.due = 0  # arrivals counted as scheduled
        self.stopped = True

    def start(self, t0: float, share: int = 0, of: int = 1, seed: int | None = None) -> None:
        """Schedule this process's share of the plan from epoch time `t0`."""
        self.stop()
        self.share, self.of, self.t0 = share, of, t0
        self.steady_from = time.time() + START_UP_S
        self.seed = self.shape.seed if seed is None else seed
        self._plan, self._due_plan = self._times(), self._times()
        self._due_next = next(self._due_plan, _NEVER)
        self.taken = self.due = 0
        self.stopped = False
        self.greenlet = gevent.spawn(self._count_due)

    def _times(self) -> Iterator[float]:
        return (self.t0 + offset for offset in self.shape.arrival_times(self.share, self.of, self.seed))

    def _count_due(self) -> None:
        while self._due_next < _NEVER:
            woke_due = time.time() + COUNT_EVERY_S
            gevent.sleep(COUNT_EVERY_S)
            self._count_until(time.time(), woke_due)

    def _count_until(self, now: float, woke_due: float | None = None) -> None:
        """Count the plan's arrivals due by `now` as scheduled, in the interval each was planned
        for. When this count woke late (`woke_due`: when it should have), the event loop was held
        by the generator's own work: an arrival that came due more than LATE_AFTER_MS before the
        loop was free again was held back by the generator, whatever the users were doing."""
        recorder, when = self.recorder, self._due_next
        late_after = LATE_AFTER_MS / 1000
        while when <= now:
            start, n, held = recorder.interval_start(when), 0, 0
            while when <= now and recorder.interval_start(when) == start:
                n += 1
                if woke_due is not None and when >= self.steady_from and now - max(when, woke_due) > late_after:
                    held += 1
                when = next(self._due_plan, _NEVER)
            recorder.count_iterations("scheduled", start, n=n)
            if held:
                recorder.count_iterations("generator_late", start, n=held)
            self.due += n
        self._due_next = when

    def take(self, user: Any) -> float:
        """Hold the next arrival of the plan for `user`; the seconds until it is due (0: due already).
        Locust's wait_time sleeps them, so an iteration on schedule costs one timer, as a paced
        user of plain Locust does, and no extra pass of the event loop."""
        when = next(self._plan, _NEVER) if not self.stopped else _NEVER
        self.taken += 1
        self.idle += 1
        user._loadwise_when = when
        return min(max(when - time.time(), 0.0), 60.0)

    def begin(self, user: Any) -> None:
        """Start the arrival `user` holds (taking one if it holds none) once it is due; record its
        start lateness on the user. Past the lateness bound the arrival is dropped and the next taken."""
        while True:
            when = getattr(user, "_loadwise_when", None)
            if when is None:
                self.take(user)
                continue
            # gevent's timers count from the loop's cached clock and may fire early: never start early.
            while (delay := when - time.time()) > 0:
                gevent.sleep(min(delay, 60.0))
            self.idle -= 1
            user._loadwise_when = None
            now = time.time()
            lateness_ms = (now - when) * 1000
            if lateness_ms > self.shape.max_lateness_s * 1000:
                self.recorder.count_iterations("dropped", now)
                continue
            self.recorder.count_iterations("started", now, lateness_ms)
            user._loadwise_lateness_ms = lateness_ms
            return

    def next_iteration(self, user: Any) -> None:
        """Block until this user may start an iteration (take, then begin)."""
        self.take(user)
        self.begin(user)

    def demand(self, users: int) -> int:
        """Users this process needs now: the busy ones plus the arrivals due that no user has taken."""
        return max(users - self.idle, 0) + max(self.due - self.taken, 0)

    def pool_target(self, demand: int) -> int:
        """The pool size to ask of Locust: what the demand needs plus 10 %, within the shape's
        pool bounds, never smaller than before (stopping a user would cut an iteration short)."""
        wanted = demand + math.ceil(0.1 * demand)
        self.pool = min(self.shape.pool_max, max(self.pool, self.shape.users, wanted))
        return self.pool

    def spawn_rate(self) -> float:
        return self.shape.spawn_rate or min(float(self.shape.pool_max), SPAWN_RATE_MAX)

    def stop(self) -> None:
        """Stop scheduling; arrivals that came due and were not started are dropped (the run ended)."""
        if self.stopped:
            return
        self.stopped = True
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
            self.greenlet = None
        self._count_until(time.time())
        totals = self.recorder.iteration_totals
        unstarted = totals["scheduled"] - totals["started"] - totals["dropped"]
        if unstarted > 0:
            self.recorder.count_iterations("dropped", time.time(), n=unstarted)


def as_open_model(user_class: type) -> type:
    """`user_class` as an open-model user: each task waits for an arrival instead of `wait_time`.
    Same name and module, so Locust's class picker, stats and run.json see the user's own class.

    `wait_time` takes the user's next arrival and returns the time until it is due, so Locust
    sleeps it; each task function is wrapped to start that arrival right before it runs (its
    start lateness is then the delay until the task really starts). A user with a nested
    TaskSet waits in `wait_time` instead (the nested set calls it between its own tasks), which
    leaves one pass of the event loop between taking the arrival and the task out of its lateness."""
    from locust import TaskSet

    namespace = {"__module__": user_class.__module__, "__qualname__": user_class.__qualname__,
                 "__doc__": user_class.__doc__, "_loadwise_open_model": True}  # fmt: skip
    nested = any(isinstance(t, type) and issubclass(t, TaskSet) for t in user_class.tasks)
    if nested:
        def on_start(self: Any) -> None:
            user_class.on_start(self)
            _arrivals(self).next_iteration(self)

        def wait_time(self: Any) -> float:
            _arrivals(self).next_iteration(self)
            return 0.0

        namespace |= {"on_start": on_start, "wait_time": wait_time}
    else:
        namespace["wait_time"] = lambda self: _arrivals(self).take(self)
    cls = type(user_class.__name__, (user_class,), namespace)
    if not nested:
        cls.tasks = [_gated(task) for task in user_class.tasks]  # after the class: UserMeta would add them twice
    return cls


def _gated(task: Any) -> Any:
    @functools.wraps(task)  # keeps the name and Locust's tags (the function's __dict__)
    def gated(user: Any, *args: Any, **kwargs: Any) -> Any:
        _arrivals(user).begin(user)
        return task(user, *args, **kwargs)

    return gated


def _arrivals(user: Any) -> Arrivals:
    scenario = getattr(user, "_loadwise_scenario", None)  # a user of one of several scenarios: that one's plan
    env = user.environment
    arrivals = env.loadwise_scenario_arrivals.get(scenario) if scenario else getattr(env, "loadwise_arrivals", None)
    if arrivals is None:
        raise RuntimeError("an open-model user runs without loadwise's arrivals (is the loadwise plugin loaded?)")
    return arrivals
