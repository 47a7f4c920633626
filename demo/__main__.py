"""`python -m loadwise.demo --port P [--workers N] [--db DSN] [--cache redis://HOST:PORT [--cache-entries N]]
[--inject-latency ROUTE=MS] [--rows N] [--log-statements FILE]`: serve the demo shop on
127.0.0.1:P until SIGTERM."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from loadwise.demo import ROUTES
from loadwise.demo.store import MIN_ROWS, Store, default_sqlite_dsn, table_sizes


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        self.exit(2, f"demo: error: {message}\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m loadwise.demo",
        description="The loadwise demo target: a small shop (products, search, orders) with Prometheus /metrics.",
        epilog="Routes: " + ", ".join(ROUTES) + ", /metrics. Serves on 127.0.0.1 only.",
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--workers", type=int, default=1, help="worker processes, to emulate replicas (default 1)")
    parser.add_argument("--db", metavar="DSN", help="sqlite:///FILE or postgresql://... (default: a fresh SQLite file)")
    parser.add_argument("--cache", metavar="URL", help="redis://HOST:PORT: cache product details in Redis (off by default)")
    parser.add_argument("--cache-entries", type=int, metavar="N",
                        help="with --cache: keep an exact LRU of N product entries (default: bounded only by Redis's maxmemory)")
    parser.add_argument(
        "--inject-latency",
        metavar="ROUTE=MS",
        action="append",
        default=[],
        help="add MS milliseconds to every request of ROUTE (e.g. /products/{id}=50); repeatable",
    )
    parser.add_argument("--log-statements", metavar="FILE", help="append every read statement and its duration to FILE (JSON lines)")
    parser.add_argument("--rows", type=int, default=20000, help=f"products to seed (orders are 5x; minimum {MIN_ROWS})")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port} is not a TCP port")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.rows < MIN_ROWS:
        parser.error(f"--rows must be at least {MIN_ROWS}")
    latency = {}
    for item in args.inject_latency:
        route, sep, ms = item.partition("=")
        try:
            latency[route] = float(ms)
        except ValueError:
            sep = ""
        if not sep or not route.startswith("/") or latency[route] < 0:
            parser.error(f"--inject-latency {item!r}: expected ROUTE=MS, e.g. /products/{{id}}=50")
    args.inject_latency = latency
    if args.cache and not args.cache.startswith(("redis://", "rediss://", "unix://")):
        parser.error(f"--cache {args.cache!r}: expected redis://HOST:PORT")
    if args.cache_entries is not None and (args.cache_entries < 1 or not args.cache):
        parser.error("--cache-entries needs --cache and a count of at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "prometheus_client" in sys.modules:  # multiprocess mode must be chosen before its import
        raise RuntimeError("demo: prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    workdir = Path(tempfile.mkdtemp(prefix="loadwise-demo-"))
    multiproc_dir = workdir / "metrics"
    multiproc_dir.mkdir()
    # Must be set before prometheus_client is imported, here and in every worker.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)
    try:
        import uvicorn

        from loadwise.demo.app import SETTINGS_ENV, Settings

        dsn = args.db or default_sqlite_dsn(workdir)
        try:
            seeded = Store(dsn).seed(args.rows)
        except Exception as exc:
            print(f"demo: error: cannot prepare database {dsn.split('@')[-1]}: {exc}", file=sys.stderr)
            return 2
        sizes = table_sizes(args.rows)
        print(
            f"demo: {'seeded' if seeded else 'reusing'} database ({sizes['products']} products, "
            f"{sizes['orders']} orders); serving http://127.0.0.1:{args.port} with {args.workers} worker(s)",
            file=sys.stderr,
            flush=True,
        )
        os.environ[SETTINGS_ENV] = Settings(dsn, args.cache, args.cache_entries, args.inject_latency, args.log_statements).to_env()
        # uvicorn re-raises SIGTERM after its graceful shutdown; exit through `finally`
        # (removing the temp database) instead of dying on the default handler.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(
            "loadwise.demo.app:create_app",
            factory=True,
            host="127.0.0.1",
            port=args.port,
            workers=args.workers,
            log_level="warning",
            access_log=False,
        )
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
