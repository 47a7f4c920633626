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
from typing import Any

import gevent
from gevent.queue import Queue

from loadwise.engine.recorder import Recorder
from loadwise.scenarios.rates import LATE_AFTER_MS, RateShape

SPAWN_RATE_MAX = 100.0  # users started per second while the pool grows (Locust warns above 100 per worker)
YIELD_EVERY = 64  # a scheduler catching up lets the users run after this many arrivals
# Arrivals planned in the first second after scheduling starts are not held against the generator:
# the pool is being spawned then, and a worker gets its plan a moment after the master's start time.
START_UP_S = 1.0


class Arrivals:
    """The arrivals of one Locust process (its share of the plan) and its idle users."""

    def __init__(self, shape: RateShape, recorder: Recorder):
        self.shape = shape
        self.recorder = recorder
        self.queue: Queue = Queue()  # scheduled epoch times waiting for a free user
        self.idle = 0  # users waiting for an arrival
        self.greenlet: Any = None
        self.share, self.of, self.seed, self.t0, self.steady_from = 0, 1, shape.seed, 0.0, 0.0
        self.pool = shape.users  # the pool size asked of Locust so far (it never shrinks during a run)

    def start(self, t0: float, share: int = 0, of: int = 1, seed: int | None = None) -> None:
        """Schedule this process's share of the plan from epoch time `t0`."""
        self.stop()
        self.share, self.of, self.t0 = share, of, t0
        self.steady_from = time.time() + START_UP_S
        self.seed = self.shape.seed if seed is None else seed
        self.greenlet = gevent.spawn(self._schedule)

    def _schedule(self) -> None:
        for n, offset in enumerate(self.shape.arrival_times(self.share, self.of, self.seed)):
            when = self.t0 + offset
            if when <= time.time() and n % YIELD_EVERY == 0:
                gevent.sleep(0)
            # gevent's timers count from the loop's cached clock and may fire early: never start early.
            while (delay := when - time.time()) > 0:
                gevent.sleep(delay)
            now = time.time()
            self._drop_expired(now)
            # Counted when it happens (an interval already written cannot take more counts).
            self.recorder.count_iterations("scheduled", now)
            if now - when > LATE_AFTER_MS / 1000 and when >= self.steady_from:  # the generator itself woke late
                self.recorder.count_iterations("generator_late", now)
            self.queue.put(when)

    def _drop_expired(self, now: float) -> None:
        bound = self.shape.max_lateness_s
        while not self.queue.empty() and now - self.queue.peek_nowait() > bound:
            self.queue.get_nowait()
            self.recorder.count_iterations("dropped", now)

    def next_iteration(self, user: Any) -> None:
        """Block until this user may start an iteration; record its start lateness on the user."""
        while True:
            self.idle += 1
            try:
                when = self.queue.get()
            finally:
                self.idle -= 1
            now = time.time()
            lateness_ms = max(now - when, 0.0) * 1000
            if lateness_ms > self.shape.max_lateness_s * 1000:
                self.recorder.count_iterations("dropped", now)
                continue
            self.recorder.count_iterations("started", now, lateness_ms)
            user._loadwise_lateness_ms = lateness_ms
            return

    def demand(self, users: int) -> int:
        """Users this process needs now: the busy ones plus the arrivals waiting for one."""
        return max(users - self.idle, 0) + self.queue.qsize()

    def pool_target(self, demand: int) -> int:
        """The pool size to ask of Locust: what the demand needs plus 10 %, within the shape's
        pool bounds, never smaller than before (stopping a user would cut an iteration short)."""
        wanted = demand + math.ceil(0.1 * demand)
        self.pool = min(self.shape.pool_max, max(self.pool, self.shape.users, wanted))
        return self.pool

    def spawn_rate(self) -> float:
        return self.shape.spawn_rate or min(float(self.shape.pool_max), SPAWN_RATE_MAX)

    def stop(self) -> None:
        """Stop scheduling; arrivals still waiting for a user are dropped (the run ended)."""
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
            self.greenlet = None
        now = time.time()
        while not self.queue.empty():
            self.queue.get_nowait()
            self.recorder.count_iterations("dropped", now)


def as_open_model(user_class: type) -> type:
    """`user_class` as an open-model user: each task waits for an arrival instead of `wait_time`.
    Same name and module, so Locust's class picker, stats and run.json see the user's own class.

    Each task function is wrapped to take its arrival right before it runs (its start lateness
    is then the delay until the task really starts); `wait_time` is 0. A user with a nested
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
        namespace["wait_time"] = lambda self: 0.0
    cls = type(user_class.__name__, (user_class,), namespace)
    if not nested:
        cls.tasks = [_gated(task) for task in user_class.tasks]  # after the class: UserMeta would add them twice
    return cls


def _gated(task: Any) -> Any:
    @functools.wraps(task)  # keeps the name and Locust's tags (the function's __dict__)
    def gated(user: Any, *args: Any, **kwargs: Any) -> Any:
        _arrivals(user).next_iteration(user)
        return task(user, *args, **kwargs)

    return gated


def _arrivals(user: Any) -> Arrivals:
    arrivals = getattr(user.environment, "loadwise_arrivals", None)
    if arrivals is None:
        raise RuntimeError("an open-model user runs without loadwise's arrivals (is the loadwise plugin loaded?)")
    return arrivals
