"""An object of a run's summary.json read back with each value checked where it is read.

summary.json is a file a user can edit, copy between releases or truncate; the advice blocks
in it (`hpa`, `cache`, `database`, `capacity`) are read back by `loadwise verify` and the
report. Reading them through `Stored` turns a missing or malformed value into one line naming
its key path (RunDirError, exit 2) instead of a KeyError or ValueError deep in a computation.
"""

from __future__ import annotations

import math
from typing import Any

from loadwise.analysis.rundir import RunDirError

_REQUIRED = object()


class Stored:
    """A JSON object at `path` (e.g. `hpa.recommended`) of the file `where`."""

    def __init__(self, data: Any, path: str, where: str = "summary.json"):
        self.path, self.where = path, where
        if not isinstance(data, dict):
            raise self.error("", f"must be an object (got {_shown(data)})")
        self.data: dict[str, Any] = data

    def error(self, key: str, problem: str) -> RunDirError:
        name = f"{self.path}.{key}" if key else self.path
        return RunDirError(f"{self.where}: {name} {problem}")

    def _value(self, key: str, default: Any) -> Any:
        value = self.data.get(key)
        if value is None and default is _REQUIRED:
            raise self.error(key, "is missing (re-run the command that wrote it)")
        return value

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def child(self, key: str) -> Stored:
        return Stored(self._value(key, _REQUIRED), f"{self.path}.{key}", self.where)

    def optional_child(self, key: str) -> Stored | None:
        value = self.data.get(key)
        return None if value is None else Stored(value, f"{self.path}.{key}", self.where)

    def children(self, key: str) -> list[Stored]:
        """A list of objects; an absent list is empty."""
        value = self._value(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"must be a list (got {_shown(value)})")
        return [Stored(item, f"{self.path}.{key}[{i}]", self.where) for i, item in enumerate(value or [])]

    def number(self, key: str, default: Any = _REQUIRED, low: float | None = None, above: float | None = None) -> Any:
        """A finite number (at least `low`, or more than `above`), else `default` when absent."""
        value = self._value(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(key, f"must be a number (got {_shown(value)})")
        if low is not None and value < low:
            raise self.error(key, f"must be at least {low:g} (got {value!r})")
        if above is not None and value <= above:
            raise self.error(key, f"must be more than {above:g} (got {value!r})")
        return float(value)

    def whole(self, key: str, default: Any = _REQUIRED, low: int | None = None) -> Any:
        value = self._value(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be a whole number (got {_shown(value)})")
        if low is not None and value < low:
            raise self.error(key, f"must be at least {low} (got {value})")
        return value

    def text(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._value(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(key, f"must be a string (got {_shown(value)})")
        return value

    def texts(self, key: str) -> list[str]:
        value = self._value(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"must be a list of strings (got {_shown(value)})")
        return list(value)

    def flag(self, key: str) -> bool:
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false (got {_shown(value)})")
        return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
