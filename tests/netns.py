"""Test hosts of our own: network namespaces joined by veth links, with loopback-range addresses.

`Hosts` makes a master host and N worker hosts, each a network namespace with a veth link to
the master's. Every address is in 127.0.0.0/8 (route_localnet lets it cross a veth), so the
tests' traffic never leaves this machine nor uses another range. The master's host answers on
MASTER_IP; a link can be cut (`ip link set down`) and delayed (tc netem, where the kernel has
it). Needs root and iproute2; everything made is removed on exit (deleting a namespace deletes
its links), and only processes started here are stopped, by PID.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from types import TracebackType

MASTER_IP = "127.78.0.1"  # the master host's address on the segment: its services listen here


def available() -> str | None:
    """Why network namespaces cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not shutil.which("ip"):
        return "iproute2's `ip` is not installed"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


class Hosts:
    def __init__(self, workers: int = 2) -> None:
        tag = secrets.token_hex(3)
        self.master = f"lwm{tag}"
        self.workers = [f"lww{i}{tag}" for i in range(workers)]
        self.links: dict[str, tuple[str, str]] = {}  # worker namespace -> (its link's name there, the master's end)

    def __enter__(self) -> Hosts:
        try:
            self._make()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _route_localnet(self, ns: str, dev: str) -> None:
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv4.conf.{dev}.route_localnet=1"],
                       check=True, capture_output=True, timeout=30)  # fmt: skip

    def _only_loopback_local(self, ns: str) -> None:
        """127.0.0.0/8 is all local by default: keep only 127.0.0.1 so other 127.x addresses route over the links."""
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")
        _ip("-n", ns, "route", "replace", "local", "127.0.0.1", "dev", "lo", "table", "local")
        self._route_localnet(ns, "all")

    def _make(self) -> None:
        """One segment: a bridge in the master's host (MASTER_IP) with each worker's veth on it."""
        _ip("netns", "add", self.master)
        self._only_loopback_local(self.master)
        _ip("-n", self.master, "link", "add", "lwbr", "type", "bridge")
        self._route_localnet(self.master, "lwbr")
        _ip("-n", self.master, "addr", "add", f"{MASTER_IP}/16", "dev", "lwbr")
        _ip("-n", self.master, "link", "set", "lwbr", "up")
        for i, ns in enumerate(self.workers):
            _ip("netns", "add", ns)
            self._only_loopback_local(ns)
            here, there = f"lwv{i}w", f"lwv{i}m"
            _ip("link", "add", here, "netns", ns, "type", "veth", "peer", "name", there, "netns", self.master)
            self._route_localnet(ns, here)
            _ip("-n", ns, "addr", "add", f"127.78.{i + 1}.1/16", "dev", here)
            _ip("-n", ns, "link", "set", here, "up")
            _ip("-n", self.master, "link", "set", there, "master", "lwbr")
            _ip("-n", self.master, "link", "set", there, "up")
            self.links[ns] = (here, there)

    def command(self, ns: str, argv: list[str]) -> list[str]:
        """`argv` run inside namespace `ns` (`ip netns exec` execs it: the PID is the program's)."""
        return ["ip", "netns", "exec", ns, *argv]

    def delay(self, ms: float) -> bool:
        """Delay every packet from the master to its workers by `ms` (tc netem); False when the
        kernel has no netem (CONFIG_NET_SCH_NETEM not set)."""
        for ns, (_, there) in self.links.items():
            done = subprocess.run(["ip", "netns", "exec", self.master, "tc", "qdisc", "add", "dev", there, "root", "netem",
                                   "delay", f"{ms:g}ms"], capture_output=True, text=True, timeout=30)  # fmt: skip
            if done.returncode != 0:
                return False
        return True

    def cut(self, ns: str) -> None:
        """Take worker `ns`'s link down: it can reach neither the master nor the target any more."""
        _ip("-n", ns, "link", "set", self.links[ns][0], "down")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for ns in [*self.workers, self.master]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
