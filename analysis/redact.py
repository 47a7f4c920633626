"""Redaction of secrets from any text that leaves a process (error messages, labels)."""

from __future__ import annotations

import re

_PATTERNS = [
    # Authorization: Bearer abc / Basic abc (header form and repr form)
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer|basic|token)?\s*[^\s'\",}]+"), r"\1\2 [REDACTED]"),
    # key=value or key: value for common secret names (query strings, DSNs, JSON)
    (
        re.compile(r"(?i)\b((?:access_?|api_?|auth_?|refresh_?)?(?:token|password|passwd|pwd|secret|api_?key)['\"]?\s*[:=]\s*['\"]?)[^\s&'\",;}]+"),
        r"\1[REDACTED]",
    ),
    # credentials inside URLs: scheme://user:password@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), r"\1[REDACTED]@"),
]


def redact(text: str) -> str:
    """Return `text` with tokens, passwords and Authorization values replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
