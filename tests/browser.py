"""Open a local HTML file in Debian's headless Chromium with the network switched off, via
the DevTools protocol: console errors, every request, element sizes, a screenshot."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services import require, terminate

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0", "--window-size=1280,2000",
]  # fmt: skip


@dataclass
class PageCheck:
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    results: dict[str, Any] = field(default_factory=dict)  # name -> value of each expression


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    require("Chromium (chromium)", found is not None)
    return found or ""


def open_page(path: Path, expressions: dict[str, str], screenshot: Path | None = None, timeout_s: float = 60) -> PageCheck:
    import websocket

    profile = Path(tempfile.mkdtemp(prefix="loadwise-chromium-"))
    proc = subprocess.Popen([chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(t for t in json.loads(response.read()) if t["type"] == "page")
        ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout_s, suppress_origin=True)
        check = PageCheck()
        next_id = iter(range(1, 10_000))

        def handle(event: dict[str, Any]) -> None:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                check.requests.append(params["request"]["url"])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                check.console_errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                check.console_errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                check.console_errors.append(params["entry"]["text"])

        def call(method: str, **params: Any) -> dict[str, Any]:
            my_id = next(next_id)
            ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
            while True:
                message = json.loads(ws.recv())
                if message.get("id") == my_id:
                    if "error" in message:
                        raise RuntimeError(f"{method}: {message['error']}")
                    return message.get("result", {})
                handle(message)

        for domain in ("Network", "Runtime", "Log", "Page"):
            call(f"{domain}.enable")
        call("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1, uploadThroughput=-1)
        call("Page.navigate", url=path.resolve().as_uri())
        while True:  # until the load event, collecting what happens on the way
            message = json.loads(ws.recv())
            handle(message)
            if message.get("method") == "Page.loadEventFired":
                break
        time.sleep(0.3)
        for name, expr in expressions.items():
            result = call("Runtime.evaluate", expression=expr, returnByValue=True)
            check.results[name] = result.get("result", {}).get("value")
        if screenshot is not None:
            shot = call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        ws.close()
        return check
    finally:
        terminate(proc, timeout_s=10)
        shutil.rmtree(profile, ignore_errors=True)
