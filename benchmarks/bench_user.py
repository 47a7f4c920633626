"""A bare FastHttpUser against a trivial endpoint.

As fast as it can go (wait_time 0); with BENCH_USER_RATE=R, R requests per second per user
(Locust's constant_throughput); with BENCH_EVEN_RATE=R, the process's users together send R
requests per second evenly spaced, the k-th at k / R (what an open model's uniform arrivals
send, in plain Locust: its fair counterpart, since evenly spaced requests cost the event loop
more than paced users' requests, which bunch).
"""

import itertools
import os
import time

import gevent
from locust import FastHttpUser, constant, constant_throughput, task

RATE = float(os.environ.get("BENCH_USER_RATE", "0"))
EVEN_RATE = float(os.environ.get("BENCH_EVEN_RATE", "0"))
_slots = itertools.count()
_start: list[float] = []


def _wait_for_slot() -> None:
    if not _start:
        _start.append(time.time())
    when = _start[0] + next(_slots) / EVEN_RATE
    while (delay := when - time.time()) > 0:
        gevent.sleep(delay)


class HealthUser(FastHttpUser):
    wait_time = constant_throughput(RATE) if RATE > 0 else constant(0)

    @task
    def health(self) -> None:
        if EVEN_RATE > 0:
            _wait_for_slot()
        self.client.get("/health", name="/health")
