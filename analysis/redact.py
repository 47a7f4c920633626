"""Redaction of secrets from any text that leaves a process or enters a run directory:
error messages, endpoint names, hosts, labels, log lines.

Covered: Authorization headers (header, JSON and Python-repr forms) and bare
`Bearer`/`Basic` credentials; cookies and session ids; API-key headers; values of
sensitive-looking keys in query strings, DSNs and JSON; the password in URL userinfo.
"""

from __future__ import annotations

import functools
import re

MASK = "[REDACTED]"
# Names whose values are secrets wherever they appear as key=value or key: value.
_SECRET_KEY = (r"(?:access[_-]?|api[_-]?|auth[_-]?|refresh[_-]?|id[_-]?|client[_-]?|private[_-]?)?"
               r"(?:token|password|passwd|pwd|secret|api[_-]?key|apikey|session(?:[_-]?id)?|sessid|jsessionid|"
               r"phpsessid|sid|signature|sig|credential|x-amz-signature|x-amz-security-token)")  # fmt: skip
_VALUE_END = r"[^\s&'\",;}\]]+"

_PATTERNS = [
    # Authorization / Proxy-Authorization: header form, JSON and Python repr ('Authorization': 'Bearer X')
    (re.compile(r"(?i)((?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)(?:(bearer|basic|token|digest)\s+)?[^\s'\",}]+"),
     lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}{MASK}"),
    # a bare credential: "Bearer eyJ..." / "Basic dXNlcjpw..."
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), lambda m: f"{m.group(1)} {MASK}"),
    # Cookie / Set-Cookie headers: every value
    (re.compile(r"(?i)((?:set-)?cookie['\"]?\s*[:=]\s*['\"]?)[^'\"\n}]+"), lambda m: f"{m.group(1)}{MASK}"),
    # key=value, key: value, "key": "value" for secret names (query strings, DSNs, JSON, headers like X-API-Key)
    (re.compile(rf"(?i)(\b(?:x-)?{_SECRET_KEY}['\"]?\s*[:=]\s*['\"]?){_VALUE_END}"), lambda m: f"{m.group(1)}{MASK}"),
    # credentials inside URLs: scheme://user:password@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), lambda m: f"{m.group(1)}{MASK}@"),
]


def redact(text: str) -> str:
    """Return `text` with tokens, passwords, cookies and Authorization values replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# Endpoint names and error messages repeat thousands of times a second: redact each once.
redact_cached = functools.lru_cache(maxsize=4096)(redact)
