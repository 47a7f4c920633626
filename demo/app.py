"""The demo shop as an ASGI app (Starlette), served by uvicorn from `python -m loadwise.demo`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loadwise.demo import metrics
from loadwise.demo.cache import ProductCache
from loadwise.demo.store import Store

SETTINGS_ENV = "LOADWISE_DEMO_SETTINGS"
CACHE_TTL_S = 60

log = logging.getLogger("demo")
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Settings:
    dsn: str
    cache_url: str | None = None
    cache_entries: int | None = None
    inject_latency_ms: dict[str, float] = field(default_factory=dict)
    statement_log: str | None = None

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> Settings:
        return cls(**json.loads(os.environ[SETTINGS_ENV]))


def normalize_route(route: str) -> str:
    """Accept Locust-style names too: `/products/[id]` means `/products/{id}`."""
    return route.replace("[", "{").replace("]", "}")


class Shop:
    def __init__(self, settings: Settings):
        self.store = Store(settings.dsn, settings.statement_log)
        self.cache = ProductCache(settings.cache_url, CACHE_TTL_S, settings.cache_entries) if settings.cache_url else None

    def product(self, product_id: int) -> dict | None:
        if self.cache is None:
            return self.store.product(product_id)
        key = f"product:{product_id}"
        try:
            cached = self.cache.get(key)
        except Exception as exc:  # a cache outage degrades to the database, it does not fail requests
            log.warning("cache unavailable: %s", exc)
            return self.store.product(product_id)
        if cached is not None:
            metrics.CACHE.labels("hit").inc()
            return json.loads(cached)
        metrics.CACHE.labels("miss").inc()
        product = self.store.product(product_id)
        if product is not None:
            try:
                self.cache.put(key, json.dumps(product))
            except Exception as exc:
                log.warning("cache unavailable: %s", exc)
        return product


def _int_param(request: Request, name: str, default: int, low: int = 1, high: int = 100) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw)  # ValueError becomes a 400 in `instrumented`
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return value


def build_routes(shop: Shop, inject_latency_ms: dict[str, float]) -> list[Route]:
    delays = {normalize_route(route): ms / 1000.0 for route, ms in inject_latency_ms.items()}

    def instrumented(template: str, method: str, handler: Handler) -> Route:
        route = re.sub(r":\w+}", "}", template)  # the label and the --inject-latency key: /products/{id}
        delay = delays.get(route, 0.0)

        async def endpoint(request: Request) -> Response:
            metrics.IN_PROGRESS.inc()
            started = time.perf_counter()
            status = 500
            try:
                if delay:
                    await asyncio.sleep(delay)
                try:
                    response = await handler(request)
                except (ValueError, KeyError, json.JSONDecodeError) as exc:
                    response = JSONResponse({"error": str(exc)}, status_code=400)
                status = response.status_code
                return response
            finally:
                metrics.REQUESTS.labels(method, route, str(status)).inc()
                metrics.LATENCY.labels(method, route).observe(time.perf_counter() - started)
                metrics.IN_PROGRESS.dec()

        return Route(template, endpoint, methods=[method])

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def products(request: Request) -> Response:
        category = request.query_params.get("category", "books")
        limit = _int_param(request, "limit", 20)
        return JSONResponse(await run_in_threadpool(shop.store.products_by_category, category, limit))

    async def product(request: Request) -> Response:
        found = await run_in_threadpool(shop.product, int(request.path_params["id"]))
        if found is None:
            return JSONResponse({"error": "no such product"}, status_code=404)
        return JSONResponse(found)

    async def search(request: Request) -> Response:
        text = request.query_params.get("q", "")
        if not text:
            raise ValueError("q is required")
        return JSONResponse(await run_in_threadpool(shop.store.search, text, _int_param(request, "limit", 20)))

    async def customer_orders(request: Request) -> Response:
        customer = int(request.path_params["id"])
        return JSONResponse(await run_in_threadpool(shop.store.customer_orders, customer, 20))

    async def create_order(request: Request) -> Response:
        body = await request.json()
        args = (int(body["customer_id"]), int(body["product_id"]), int(body.get("quantity", 1)))
        order_id = await run_in_threadpool(shop.store.create_order, *args)
        return JSONResponse({"id": order_id}, status_code=201)

    async def metrics_endpoint(request: Request) -> Response:
        body = await run_in_threadpool(metrics.exposition)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return [
        instrumented("/health", "GET", health),
        instrumented("/products", "GET", products),
        instrumented("/products/{id:int}", "GET", product),
        instrumented("/search", "GET", search),
        instrumented("/customers/{id:int}/orders", "GET", customer_orders),
        instrumented("/orders", "POST", create_order),
        Route("/metrics", metrics_endpoint, methods=["GET"]),  # scrapes are not traffic
    ]


def create_app() -> Starlette:
    """uvicorn factory: every worker process builds its own app from the environment."""
    settings = Settings.from_env()
    metrics.WORKERS.set(1)
    return Starlette(routes=build_routes(Shop(settings), settings.inject_latency_ms))
