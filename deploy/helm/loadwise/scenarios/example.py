"""example: a shopper browsing a catalogue; replace it with your own locustfile.

Every .py file in the chart's scenarios/ directory is shipped to the pods in a ConfigMap;
`scenario.file` picks the one the master and the workers run. A scenario here must be
self-contained (the image has locust and loadwise, not your project's modules).
"""

from __future__ import annotations

import random

from locust import FastHttpUser, between, task


class ShopperUser(FastHttpUser):
    wait_time = between(0.5, 2.0)

    @task(5)
    def list_products(self) -> None:
        self.client.get("/products?category=books", name="/products")

    @task(10)
    def view_product(self) -> None:
        # One name for every id, so the report has one row (and one threshold) for them.
        self.client.get(f"/products/{random.randint(1, 20000)}", name="/products/[id]")

    @task(2)
    def search(self) -> None:
        self.client.get("/search?q=lamp", name="/search")

    @task(1)
    def order(self) -> None:
        self.client.post("/orders", json={"customer_id": random.randint(1, 5000), "product_id": random.randint(1, 20000)}, name="/orders")
