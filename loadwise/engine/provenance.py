"""What shaped a run on Locust's side, as run.json keeps it: the command line, tag filters,
config files, LOCUST_* variables, the User classes and each one's share; and the exceptions
raised in tasks. Every string is redacted like everything else that is stored."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from gevent import getcurrent

from loadwise.analysis.redact import redact

OUTSIDE_USERS = "(outside any user)"  # requests fired by a greenlet that is not a User's (a locustfile's own)


def locust_record(env: Any) -> dict[str, Any]:
    """The `locust` object of run.json for this Locust environment."""
    opts = env.parsed_options
    candidates = [Path("~/.locust.conf").expanduser(), Path("locust.conf")]
    if getattr(opts, "config", None):
        candidates.append(Path(opts.config))
    pyproject = Path("pyproject.toml")
    if pyproject.is_file() and "[tool.locust]" in pyproject.read_text(encoding="utf-8", errors="replace"):
        candidates.append(pyproject)
    return {
        "argv": [redact(a) for a in sys.argv[1:]],
        "tags": getattr(opts, "tags", None),
        "exclude_tags": getattr(opts, "exclude_tags", None),
        "config_files": sorted({str(p.resolve()) for p in candidates if p.is_file()}),
        "environment": {k: redact(v) for k, v in sorted(os.environ.items()) if k.startswith("LOCUST_")},
        "user_classes": [{"name": u.__name__, "weight": getattr(u, "weight", 1), "fixed_count": getattr(u, "fixed_count", 0)}
                         for u in env.user_classes],  # fmt: skip
    }


def current_user() -> Any:
    """The User whose task is running now (None outside any user): Locust runs each user in a
    greenlet whose first argument is the User instance."""
    args = getattr(getcurrent(), "args", None)
    return args[0] if args else None


def add_class_counts(record: dict[str, Any], requests: dict[str, list[int]], peak_users: dict[str, int]) -> None:
    """Per User class in `record`: its peak user count and the requests (and failures) its users sent."""
    classes = record.setdefault("user_classes", [])
    for entry in classes:
        sent, failed = requests.get(entry["name"], (0, 0))
        entry.update(peak_users=peak_users.get(entry["name"], 0), requests=sent, failures=failed)
    if OUTSIDE_USERS in requests:
        sent, failed = requests[OUTSIDE_USERS]
        classes.append({"name": OUTSIDE_USERS, "requests": sent, "failures": failed})


def exception_rows(runner: Any) -> list[dict[str, Any]]:
    """Exceptions raised in tasks, as Locust groups them (a master gathers its workers'):
    count, message and one traceback each."""
    grouped = getattr(runner, "exceptions", {}) or {}
    rows = [{"count": int(e.get("count", 0)), "message": redact(str(e.get("msg", ""))),
             "traceback": redact(str(e.get("traceback", ""))), "nodes": ", ".join(sorted(map(str, e.get("nodes", ()))))}
            for e in grouped.values()]  # fmt: skip
    return sorted(rows, key=lambda r: -r["count"])
