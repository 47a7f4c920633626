"""Named checks, as k6's `check`: an assertion on a response counted pass or fail per endpoint,
without failing the request (Locust's `catch_response` is for that).

    from loadwise import check

    @task
    def product(self):
        response = self.client.get("/products/1", name="/products/[id]")
        check(response, {"status is 200": lambda r: r.status_code == 200,
                         "has a price": lambda r: "price" in r.text})

The endpoint is the request's own (Locust's `request_meta`: its method and name, the names
the recorder uses), else `method=`/`name=`. Each process counts its users' checks; a worker
sends its counts with its reports, the master adds them up; run.json `checks` holds them and
summary.json gives each endpoint and the run `checks` (the passing share) for thresholds
such as `checks>99%`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from loadwise.engine import provenance

MAX_CHECKS = 1000  # distinct (method, name, check) triples a run keeps; beyond, grouped under OTHER
OTHER = "[other checks]"
Key = tuple[str, str, str]  # method, endpoint name, check name


class CheckCounts:
    """Passes and fails per (method, endpoint, check) in one process."""

    def __init__(self) -> None:
        self.counts: dict[Key, list[int]] = {}

    def add(self, key: Key, passed: bool, n: int = 1) -> None:
        pair = self.counts.get(key)
        if pair is None:
            if len(self.counts) >= MAX_CHECKS:
                key = ("", OTHER, OTHER)
            pair = self.counts.setdefault(key, [0, 0])
        pair[0 if passed else 1] += n

    def drain(self) -> list[list[Any]]:
        """For a worker's report: what is new since the last one (then forgotten here)."""
        rows = [[*key, passes, fails] for key, (passes, fails) in self.counts.items()]
        self.counts = {}
        return rows

    def absorb(self, rows: Any) -> None:
        for method, name, check_name, passes, fails in rows or []:
            key = (str(method), str(name), str(check_name))
            self.add(key, True, int(passes))
            self.add(key, False, int(fails))

    def records(self) -> list[dict[str, Any]]:
        """run.json's `checks`."""
        return [{"method": m, "name": n, "check": c, "passes": p, "fails": f}
                for (m, n, c), (p, f) in sorted(self.counts.items())]  # fmt: skip


def check(response: Any, checks: Mapping[str, Callable[[Any], Any] | bool] | str, passed: bool | None = None, *,
          method: str | None = None, name: str | None = None) -> bool:  # fmt: skip
    """Count each named check on `response` as passed or failed; True when all passed.

    `checks`: {check name: predicate of the response, or a bool}; or one name with `passed`.
    A predicate that raises counts as failed (the task goes on). Call it from a task."""
    if isinstance(checks, str):
        if passed is None:
            raise TypeError("check(response, 'name', passed): give whether it passed")
        checks = {checks: bool(passed)}
    user = provenance.current_user()
    counts = getattr(getattr(user, "environment", None), "loadwise_checks", None)
    if counts is None:
        raise RuntimeError("loadwise.check() counts only inside a task of a loadwise run (locust -f loadwise's locustfile)")
    meta = getattr(response, "request_meta", None) or {}
    key_method = method or str(meta.get("request_type", "") or "")
    key_name = name or str(meta.get("name", "") or "")
    if not key_name:
        raise ValueError("check(): this response does not say its endpoint; give name= (and method=)")
    every = True
    for check_name, test in checks.items():
        try:
            ok = bool(test(response)) if callable(test) else bool(test)
        except Exception:  # a check that cannot be evaluated did not pass; the user's task goes on
            ok = False
        counts.add((key_method, key_name, str(check_name)), ok)
        every = every and ok
    return every
