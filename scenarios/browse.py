"""browse: shoppers looking around: a weighted read mix with think time."""

from __future__ import annotations

import random

from locust import FastHttpUser, between, task

from loadwise.scenarios.shop import CATEGORIES, WORDS, customer_id, product_id


class BrowseUser(FastHttpUser):
    wait_time = between(0.2, 0.8)

    @task(6)
    def view_product(self) -> None:
        self.client.get(f"/products/{product_id()}", name="/products/[id]")

    @task(3)
    def list_category(self) -> None:
        self.client.get(f"/products?category={random.choice(CATEGORIES)}", name="/products")

    @task(2)
    def search(self) -> None:
        self.client.get(f"/search?q={random.choice(WORDS)}", name="/search")

    @task(1)
    def my_orders(self) -> None:
        self.client.get(f"/customers/{customer_id()}/orders", name="/customers/[id]/orders")
