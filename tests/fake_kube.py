"""A stand-in for the Kubernetes API server, answering with recorded responses.

No API server can run on the test machines (no container runtime, no cluster), so the
`kubernetes` client talks HTTP to this server instead: Job and Pod reads and lists, a
Job watch (newline-delimited events), a pod log, and pod exec over a WebSocket with the
v4.channel.k8s.io framing (a channel byte before each message, the exit status as a
Status object on channel 3), which is how `kubectl cp` moves files. The responses are
the API's own shapes, kept in tests/k8s_api/.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

RESPONSES = Path(__file__).with_name("k8s_api")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

ExecHandler = Callable[[list[str]], tuple[bytes, bytes, int]]  # command -> stdout, stderr, exit code


@dataclass
class Script:
    """What the fake cluster answers; tests change the fields to play a scenario."""

    jobs: str = "jobs.json"  # or "status-403.json"
    pod: str | list[str] = "pod.json"  # or "pod-evicted.json", "status-404.json"; a list: one per read, the last repeats
    watch: str = "job-watch-complete.jsonl"
    log: str | list[str] = "master.log"  # a list: one per request, as for pod
    exec: ExecHandler = lambda command: (b"", b"command not found", 127)
    exec_denied: bool = False  # answer exec with 403 (no create on pods/exec)
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)


def _next(answers: str | list[str]) -> str:
    """One answer, or the next of a sequence (its last one repeats)."""
    if isinstance(answers, str):
        return answers
    return answers.pop(0) if len(answers) > 1 else answers[0]


def _status_code(name: str) -> int:
    match = re.match(r"status-(\d+)", name)
    return int(match.group(1)) if match else 200


class _Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.script.requests.append((url.path, query))
        path = url.path
        if re.fullmatch(r"/apis/batch/v1/namespaces/[^/]+/jobs", path):
            if query.get("watch") == ["true"]:
                return self._send(200, (RESPONSES / self.script.watch).read_bytes(), "application/json")
            return self._file(self.script.jobs)
        if re.fullmatch(r"/apis/batch/v1/namespaces/[^/]+/jobs/[^/]+", path):
            return self._file("job.json")
        if re.fullmatch(r"/api/v1/namespaces/[^/]+/pods", path):
            return self._file("pods.json")
        if re.fullmatch(r"/api/v1/namespaces/[^/]+/pods/[^/]+", path):
            return self._file(_next(self.script.pod))
        if re.fullmatch(r"/api/v1/namespaces/[^/]+/pods/[^/]+/log", path):
            return self._send(200, (RESPONSES / _next(self.script.log)).read_bytes(), "text/plain")
        if re.fullmatch(r"/api/v1/namespaces/[^/]+/pods/[^/]+/exec", path) and self.headers.get("Upgrade", "").lower() == "websocket":
            if self.script.exec_denied:
                return self._file("status-403-exec.json")
            return self._exec(query.get("command", []))
        self._file("status-404.json")

    def _file(self, name: str) -> None:
        self._send(_status_code(name), (RESPONSES / name).read_bytes(), "application/json")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _exec(self, command: list[str]) -> None:
        accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
        self.end_headers()
        stdout, stderr, code = self.script.exec(command)
        for start in range(0, len(stdout), 32768):
            self._frame(b"\x01" + stdout[start : start + 32768])
        if stderr:
            self._frame(b"\x02" + stderr)
        if code == 0:
            status = {"metadata": {}, "status": "Success"}
        else:
            status = {"metadata": {}, "status": "Failure", "message": f"command terminated with non-zero exit code: exit status {code}",
                      "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}  # fmt: skip
        self._frame(b"\x03" + json.dumps(status).encode())
        self.wfile.write(b"\x88\x02" + struct.pack("!H", 1000))  # close, normal
        self.wfile.flush()
        self.close_connection = True

    def _frame(self, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            header = bytes([0x82, n])
        elif n < 65536:
            header = bytes([0x82, 126]) + struct.pack("!H", n)
        else:
            header = bytes([0x82, 127]) + struct.pack("!Q", n)
        self.wfile.write(header + payload)


class FakeKube:
    """`with FakeKube() as kube:` serves on a free loopback port; `kube.kubeconfig(path)` points a client at it."""

    def __init__(self, script: Script | None = None):
        self.script = script or Script()
        handler = type("Handler", (_Handler,), {"script": self.script})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, path: Path, namespace: str = "load") -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "ci", "user": {"token": "not-a-real-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "ci", "namespace": namespace}}],
        }))  # fmt: skip
        return path

    def __enter__(self) -> FakeKube:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
