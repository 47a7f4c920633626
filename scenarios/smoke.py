"""smoke: every endpoint once a cycle, to check a deployment answers at all."""

from __future__ import annotations

from locust import FastHttpUser, constant, task

from loadwise.scenarios.shop import customer_id, product_id


class SmokeUser(FastHttpUser):
    wait_time = constant(1)

    @task
    def every_endpoint(self) -> None:
        self.client.get("/health", name="/health")
        self.client.get("/products?category=books", name="/products")
        self.client.get(f"/products/{product_id()}", name="/products/[id]")
        self.client.get("/search?q=lamp", name="/search")
        self.client.get(f"/customers/{customer_id()}/orders", name="/customers/[id]/orders")
        self.client.post("/orders", json={"customer_id": customer_id(), "product_id": product_id()}, name="/orders")
