"""What the shop scenarios share: which ids and words to ask for."""

from __future__ import annotations

import random

# The demo seeds at least 1000 products and 100 customers.
PRODUCT_IDS = 1000
CUSTOMER_IDS = 100
HOT_PRODUCTS = 100
CATEGORIES = ["books", "garden", "kitchen", "toys", "music", "sports", "tools", "office"]
WORDS = ["lamp", "chair", "kettle", "guitar", "ball", "drill", "mug", "tent"]


def product_id() -> int:
    """Skewed popularity, as real catalogues have: 80 % of views go to 100 hot products."""
    if random.random() < 0.8:
        return random.randint(1, HOT_PRODUCTS)
    return random.randint(1, PRODUCT_IDS)


def customer_id() -> int:
    return random.randint(1, CUSTOMER_IDS)
