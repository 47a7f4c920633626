"""Built-in Locust scenarios against the demo shop. One module per scenario.

Request names are grouped (`/products/[id]`), never one name per id.
"""

SCENARIOS = {
    "browse": "loadwise.scenarios.browse",
    "checkout": "loadwise.scenarios.checkout",
    "smoke": "loadwise.scenarios.smoke",
}
