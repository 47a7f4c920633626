"""A bare FastHttpUser against a trivial endpoint.

As fast as it can go (wait_time 0), or, with BENCH_USER_RATE=R set, R requests per second
per user (Locust's constant_throughput): the fixed rate below saturation at which the
generator's CPU per request is measured.
"""

import os

from locust import FastHttpUser, constant, constant_throughput, task

RATE = float(os.environ.get("BENCH_USER_RATE", "0"))


class HealthUser(FastHttpUser):
    wait_time = constant_throughput(RATE) if RATE > 0 else constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health", name="/health")
