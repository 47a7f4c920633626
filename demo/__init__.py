"""The embedded demo target: a small shop over HTTP that loadwise tests and advisors run against."""

# The shop's routes, as labelled in its metrics and as --inject-latency takes them.
ROUTES = ("/health", "/products", "/products/{id}", "/search", "/customers/{id}/orders", "/orders")
