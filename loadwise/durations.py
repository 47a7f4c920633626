"""Durations as people write them: `90`, `90s`, `5m`, `1h30m`, `7d`."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)?")
_UNIT_S = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises ValueError naming the text when it is not a duration."""
    text = text.strip().lower()
    pos, total = 0, 0.0
    while pos < len(text):
        match = _PART.match(text, pos)
        if not match or (match.group(2) is None and match.end() != len(text)):
            raise ValueError(f"{text!r} is not a duration (use e.g. 90, 90s, 5m, 1h30m, 7d)")
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if not text:
        raise ValueError("empty duration")
    return total
