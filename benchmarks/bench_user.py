"""A bare FastHttpUser against the demo target's cheapest endpoint, as fast as it can go."""

from locust import FastHttpUser, constant, task


class HealthUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health", name="/health")
