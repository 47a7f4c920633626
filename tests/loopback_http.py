"""A tiny HTTP server on a free loopback port for tests whose target must behave in one exact way.

`serve(answer, **state)` answers each GET with `answer(server)` (on the server's own threads;
under `server.lock`-free code unless the answer takes it) with `state` as the server's
attributes, and stops the server when the block ends."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = self.server.answer(self.server)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(answer: Callable[[Any], bytes], **state: Any) -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.answer, server.lock = answer, threading.Lock()
    for key, value in state.items():
        setattr(server, key, value)
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
