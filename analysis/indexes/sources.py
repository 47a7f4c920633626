"""Statements with their constants, for the index advisor: from a PostgreSQL log and from a file.

pg_stat_statements keeps each statement with its constants replaced by parameters, so the
advisor plans it generically, and a range on a parameter is costed at PostgreSQL's default
selectivity (a third of the rows). The server's log keeps the values, as Dexter reads them:
`log_min_duration_statement` lines (`statement: ...` with the constants written in, or
`execute <name>: ...` followed by `DETAIL:  Parameters: $1 = '...'`), and auto_explain's
`Query Text:` (with `Query Parameters:` since PostgreSQL 16). Statements that differ only in
their constants are one statement (pglast's fingerprint); the slowest instance's constants are
the ones planned. Pure: text in, statements out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from pglast import split
from pglast.parser import fingerprint

from loadwise.analysis.indexes.choose import Statement
from loadwise.analysis.indexes.usage import SqlUsageError

SOURCE_LOG, SOURCE_FILE = "postgresql log", "statements file"
# A log entry's first line: the prefix (log_line_prefix) then the level and the message.
_ENTRY = re.compile(r"^(?P<prefix>.*?)\b(?P<level>LOG|DETAIL|STATEMENT|ERROR|WARNING|NOTICE|HINT|CONTEXT|FATAL|PANIC|INFO|DEBUG\d?):  (?P<message>.*)$")
_DURATION = re.compile(r"^duration: (?P<ms>[0-9.]+) ms  (?:(?:statement|execute [^:]*): (?P<sql>.*)|plan:(?P<plan>.*))$", re.S)
_PARAMETERS = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
_PLACEHOLDER = re.compile(r"\$(\d+)\b")
_PLANNABLE = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)  # BEGIN, SET ... are never planned


def _entries(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(level, message) per log entry, its continuation lines (a tab, or no prefix) joined."""
    level, message = None, []
    for raw in lines:
        line = raw.rstrip("\n")
        match = _ENTRY.match(line)
        if match and not line.startswith("\t"):
            if level is not None:
                yield level, "\n".join(message)
            level, message = match["level"], [match["message"]]
        elif level is not None:
            message.append(line[1:] if line.startswith("\t") else line)
    if level is not None:
        yield level, "\n".join(message)


def _bound(sql: str, parameters: str) -> str:
    """`sql` with each $n replaced by the value the log gives for it (quoted as logged)."""
    values = {int(n): value for n, value in _PARAMETERS.findall(parameters)}
    return _PLACEHOLDER.sub(lambda m: values.get(int(m[1]), m[0]), sql)


def _plan_query(plan: str) -> tuple[str | None, str]:
    """auto_explain's text format: the Query Text line and the Query Parameters line, if any."""
    text, params = None, ""
    for line in plan.splitlines():
        stripped = line.strip()
        if stripped.startswith("Query Text:"):
            text = stripped.removeprefix("Query Text:").strip()
        elif stripped.startswith("Query Parameters:"):
            params = stripped.removeprefix("Query Parameters:").strip()
    return text, params


def logged_statements(lines: Iterable[str]) -> list[tuple[str, float]]:
    """Every statement the log says ran, with its constants, and its duration in ms."""
    out: list[tuple[str, float]] = []
    pending: tuple[str, float] | None = None  # an `execute` waiting for its DETAIL: Parameters line
    for level, message in _entries(lines):
        if level == "DETAIL" and pending is not None:
            if message.lower().startswith("parameters:"):  # "parameters:" since PostgreSQL 13, "Parameters:" before
                out.append((_bound(pending[0], message), pending[1]))
                pending = None
            continue
        if pending is not None:
            out.append(pending)  # no parameters logged: planned generically, as pg_stat_statements
            pending = None
        if level != "LOG":
            continue
        match = _DURATION.match(message)
        if not match:
            continue
        ms = float(match["ms"])
        if match["plan"] is not None:
            text, params = _plan_query(match["plan"])
            if text:
                out.append((_bound(text, params) if params else text, ms))
        elif _PLACEHOLDER.search(match["sql"]):
            pending = (match["sql"].strip(), ms)
        else:
            out.append((match["sql"].strip(), ms))
    if pending is not None:
        out.append(pending)
    return out


def grouped(timed: list[tuple[str, float]], source: str) -> list[Statement]:
    """One Statement per fingerprint (statements differing only in constants), costliest first;
    each keeps its slowest instance's text (the constants planned) and the total of them all."""
    groups: dict[str, list[tuple[str, float]]] = {}
    for sql, ms in timed:
        try:
            key = fingerprint(sql)
        except Exception:  # unparsable here: kept on its own, the advisor says why it skips it
            key = f"text:{sql}"
        groups.setdefault(key, []).append((sql, ms))
    out = []
    for key, items in groups.items():
        slowest = max(items, key=lambda item: item[1])[0]
        total = sum(ms for _, ms in items)
        queryid = int(key, 16) & (2**63 - 1) if not key.startswith("text:") else hash(key) & (2**63 - 1)
        out.append(Statement(queryid, slowest, len(items), total, total / len(items), 0, source))
    return sorted(out, key=lambda s: -s.total_ms)


def from_log(text: str) -> list[Statement]:
    """Statements of a PostgreSQL log (stderr or csvlog's message text), with their constants."""
    return grouped([(sql, ms) for sql, ms in logged_statements(text.splitlines()) if _PLANNABLE.match(sql)], SOURCE_LOG)


def from_file(text: str) -> list[Statement]:
    """The statements of a SQL file, `;`-separated, each weighed the same (a file has no timings)."""
    try:
        statements = [s.strip() for s in split(text) if s.strip()]
    except Exception as exc:  # pglast's ParseError
        raise SqlUsageError(f"the statements file does not parse: {exc}") from None
    return grouped([(sql, 1.0) for sql in statements], SOURCE_FILE)
