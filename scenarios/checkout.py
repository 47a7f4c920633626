"""checkout: a buyer reads a few products, checks past orders, then places an order."""

from __future__ import annotations

from locust import FastHttpUser, between, task

from loadwise.scenarios.shop import customer_id, product_id


class CheckoutUser(FastHttpUser):
    wait_time = between(0.5, 1.5)

    @task
    def buy(self) -> None:
        customer = customer_id()
        chosen = product_id()
        for candidate in (product_id(), chosen):
            self.client.get(f"/products/{candidate}", name="/products/[id]")
        self.client.get(f"/customers/{customer}/orders", name="/customers/[id]/orders")
        with self.client.post(
            "/orders", json={"customer_id": customer, "product_id": chosen, "quantity": 1}, catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"order not created: HTTP {response.status_code}")
