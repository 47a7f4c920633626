"""Statements with their constants, for the index advisor: from a PostgreSQL log and from a file.

pg_stat_statements keeps each statement with its constants replaced by parameters, so the
advisor plans it generically, and a range on a parameter is costed at PostgreSQL's default
selectivity (a third of the rows). The server's log keeps the values, as Dexter reads them.
Statements that differ only in their constants are one statement (pglast's fingerprint); the
slowest instance's constants are the ones planned. Pure: lines in, statements out; the lines
are read as they come (an open file), and only one text per statement is kept.

The log's format is told from its first line (PostgreSQL 15's layouts, checked against a real
server in tests/test_db_sources.py):
- stderr (any log_line_prefix): an entry's first line holds the prefix, the level and the
  message; PostgreSQL writes each further line of the message tab-indented, and the entry's
  DETAIL is the next line with a prefix.
- csvlog: one CSV record per entry, the level in column 12, the message in 14 and the detail
  in 15 (the layout since 9.0; later versions add columns at the end). A record over the csv
  module's field limit (128 KiB) is skipped.
- jsonlog (PostgreSQL 15): one JSON object per line, with "message" and "detail".

Read from the messages:
- log_min_duration_statement: `duration: N ms  statement: SQL` (constants written in) and
  `duration: N ms  execute NAME: SQL` with its detail `parameters: $1 = '...', ...`; the
  `parse` and `bind` lines of the same execution are not counted again.
- auto_explain: `duration: N ms  plan:` and the plan in any auto_explain.log_format: in text,
  `Query Text: ` and the statement, all its lines up to `Query Parameters: ` or the plan's
  first node; in json, yaml and xml, the "Query Text" and "Query Parameters" values. (Query
  Parameters since PostgreSQL 16; without them the statement keeps its `$n`.)

Counted once: when both log_min_duration_statement and auto_explain log an execution, the
log has two entries for it, in either order (auto_explain writes when the executor ends, which
for the extended protocol is after the execute line and for the simple protocol before the
statement line), and the stderr format need not name the process. So the rule is by source,
not by pairing: a statement (fingerprint) that has duration lines is counted from those only;
auto_explain's entries count for the statements that have none (those auto_explain logs under
a lower threshold than log_min_duration_statement's). The cost: a statement whose executions
fall on both sides of the two thresholds is counted only by its slower ones.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from xml.sax.saxutils import unescape

from pglast import split
from pglast.parser import fingerprint, scan

from loadwise.analysis.indexes.choose import Statement
from loadwise.analysis.indexes.usage import SqlUsageError

SOURCE_LOG, SOURCE_FILE = "postgresql log", "statements file"

# Statement text worth planning for index advice: BEGIN, SET, COMMIT and DDL never are. An
# INSERT only with a SELECT in it: INSERT ... SELECT reads tables an index may serve, but an
# INSERT ... VALUES gets nothing from one and, in pg_stat_statements' top N (a bulk load is
# often the costliest statement), would crowd out statements that do. Leading comments (an
# ORM's tag) and parentheses (`(SELECT ...) UNION ...`) may come first. The one definition:
# the PostgreSQL advisor filters pg_stat_statements with it too.
PLANNABLE_TEXT = re.compile(
    r"^(?:\s|--[^\n]*|/\*.*?\*/|\()*(?:SELECT|UPDATE|DELETE|WITH|INSERT(?=.*\bSELECT\b))\b", re.IGNORECASE | re.DOTALL
)

# A stderr entry's first line: the prefix (log_line_prefix) then the level and the message.
_ENTRY = re.compile(r"^(?P<prefix>.*?)\b(?P<level>LOG|DETAIL|STATEMENT|ERROR|WARNING|NOTICE|HINT|CONTEXT|QUERY|LOCATION"
                    r"|FATAL|PANIC|INFO|DEBUG\d?):  (?P<message>.*)$")  # fmt: skip
_PART_OF_ENTRY = {"DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION"}  # written after the entry's message
_CSV_LEVEL, _SQLSTATE = re.compile(r"[A-Z]+[0-9]?"), re.compile(r"[0-9A-Z]{5}")
# `parse` and `bind` lines are left out: the `execute` line is the execution.
_DURATION = re.compile(r"^duration: (?P<ms>[0-9.]+) ms  (?:(?:statement|execute [^:]*): (?P<sql>.*)|plan:(?P<plan>.*))$", re.S)
_PARAMETERS = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
# The first line of a text-format plan: its top node, whose estimate auto_explain always shows.
_PLAN_NODE = re.compile(r"  \(cost=\d+\.\d+\.\.\d+\.\d+ rows=\d+ width=\d+\)")
_XML_TEXT = re.compile(r"<Query-Text>(.*?)</Query-Text>", re.S)
_XML_PARAMETERS = re.compile(r"<Query-Parameters>(.*?)</Query-Parameters>", re.S)


@dataclass(frozen=True)
class _Entry:
    message: str
    detail: str = ""


def _stderr_parts(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(level, message) per stderr line with a prefix, its continuation lines (a tab, or no prefix) joined."""
    level, message = None, []
    for raw in lines:
        line = raw.rstrip("\r\n")
        match = None if line.startswith("\t") else _ENTRY.match(line)
        if match:
            if level is not None:
                yield level, "\n".join(message)
            level, message = match["level"], [match["message"]]
        elif level is not None:
            message.append(line[1:] if line.startswith("\t") else line)
    if level is not None:
        yield level, "\n".join(message)


def _stderr_entries(lines: Iterable[str]) -> Iterator[_Entry]:
    entry: _Entry | None = None
    for level, message in _stderr_parts(lines):
        if level in _PART_OF_ENTRY:
            if level == "DETAIL" and entry is not None and not entry.detail:
                entry = replace(entry, detail=message)
            continue
        if entry is not None:
            yield entry
        entry = _Entry(message)
    if entry is not None:
        yield entry


def _csv_entries(lines: Iterable[str]) -> Iterator[_Entry]:
    records = csv.reader(lines)
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except csv.Error:  # a field over the csv module's limit: that record is lost, the next ones are read
            continue
        if len(record) >= 15:
            yield _Entry(record[13], record[14])


def _json_entries(lines: Iterable[str]) -> Iterator[_Entry]:
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("message"), str):
            detail = record.get("detail")
            yield _Entry(record["message"], detail if isinstance(detail, str) else "")


def _is_csvlog(line: str) -> bool:
    try:
        record = next(csv.reader([line]), [])
    except csv.Error:
        return False
    return len(record) >= 13 and bool(_CSV_LEVEL.fullmatch(record[11])) and bool(_SQLSTATE.fullmatch(record[12]))


def _entries(lines: Iterable[str]) -> Iterator[_Entry]:
    """The log's entries, in the format its first line shows."""
    lines = iter(lines)
    head: list[str] = []
    for line in lines:
        head.append(line)
        if line.strip():
            break
    first, rest = (head[-1] if head else ""), itertools.chain(head, lines)
    if first.lstrip().startswith("{"):
        return _json_entries(rest)
    if _is_csvlog(first):
        return _csv_entries(rest)
    return _stderr_entries(rest)


def _bound(sql: str, parameters: str) -> str:
    """`sql` with each parameter replaced by the value the log gives for it (quoted as logged).
    Parameters are the scanner's tokens, so a `$1` in a string, a comment or a dollar-quoted
    string stays, and `$10` is not `$1` followed by a 0."""
    values = {int(n): value for n, value in _PARAMETERS.findall(parameters)}
    try:
        tokens = scan(sql) if values else []
    except Exception:  # pglast.parser.ParseError: left as it is, the advisor says why it skips it
        return sql
    out: list[str] = []
    done = 0
    for token in tokens:
        value = values.get(int(sql[token.start + 1 : token.end + 1])) if token.name == "PARAM" else None
        if value is not None:
            out += [sql[done : token.start], value]
            done = token.end + 1
    return "".join(out) + sql[done:]


def _pair(text: object, params: object) -> tuple[str, str] | None:
    return (text, params if isinstance(params, str) else "") if isinstance(text, str) else None


def _json_plan(plan: str) -> tuple[str, str] | None:
    try:
        document = json.loads(plan)
    except ValueError:
        return None
    return _pair(document.get("Query Text"), document.get("Query Parameters")) if isinstance(document, dict) else None


def _yaml_plan(plan: str) -> tuple[str, str] | None:
    """Each value is one JSON-escaped string on its line (PostgreSQL's escape_yaml)."""
    values: dict[str, object] = {}
    for line in plan.split("\n"):
        label, _, value = line.partition(": ")
        if label in ("Query Text", "Query Parameters"):
            try:
                values[label] = json.loads(value)
            except ValueError:
                pass
    return _pair(values.get("Query Text"), values.get("Query Parameters"))


def _xml_plan(plan: str) -> tuple[str, str] | None:
    entities = {"&#x0d;": "\r"}  # what PostgreSQL's escape_xml writes besides &amp; &lt; &gt;
    found, params = _XML_TEXT.search(plan), _XML_PARAMETERS.search(plan)
    return (unescape(found[1], entities), unescape(params[1], entities) if params else "") if found else None


def _text_plan(plan: str) -> tuple[str, str]:
    """The statement goes on over lines as it was written (auto_explain writes it as it is),
    up to `Query Parameters: ` or the plan's top node, the first line with a cost estimate."""
    lines = plan.split("\n")
    text_lines = [lines[0].removeprefix("Query Text: ")]
    param_lines: list[str] = []
    into = text_lines
    for line in lines[1:]:
        if _PLAN_NODE.search(line):
            break
        if line.startswith("Query Parameters: "):
            into, line = param_lines, line.removeprefix("Query Parameters: ")
        into.append(line)
    return "\n".join(text_lines), "\n".join(param_lines)


def _explained(plan: str) -> tuple[str, str] | None:
    """auto_explain's statement and its parameters ("" when not logged) from a plan in any log_format."""
    plan = plan.strip()
    if plan.startswith("{"):
        return _json_plan(plan)
    if plan.startswith("<explain"):
        return _xml_plan(plan)
    if plan.startswith('Query Text: "'):  # a statement cannot begin with a quoted name: yaml's quoting
        return _yaml_plan(plan) or _text_plan(plan)
    if plan.startswith("Query Text: "):
        return _text_plan(plan)
    return None


@dataclass(frozen=True)
class Logged:
    """One execution the log tells of: its statement with its constants, its duration, and
    whether auto_explain logged it (rather than log_min_duration_statement)."""

    sql: str
    ms: float
    explained: bool


def _logged(entry: _Entry) -> Logged | None:
    match = _DURATION.match(entry.message)
    if not match:
        return None
    ms = float(match["ms"])
    if match["plan"] is not None:
        found = _explained(match["plan"])
        if found is None or not found[0].strip():
            return None
        text, params = found
        return Logged((_bound(text, params) if params else text).strip(), ms, True)
    sql = match["sql"].strip()
    if entry.detail.lower().startswith("parameters:"):  # "parameters:" since PostgreSQL 13, "Parameters:" before
        sql = _bound(sql, entry.detail)
    return Logged(sql, ms, False)  # an execute without parameters logged: planned generically, as pg_stat_statements


def logged_statements(lines: Iterable[str]) -> Iterator[Logged]:
    """Every execution the log tells of, as it is read."""
    for entry in _entries(lines):
        logged = _logged(entry)
        if logged is not None:
            yield logged


@dataclass
class _Group:
    query: str  # the slowest instance's text: its constants are the ones planned
    slowest_ms: float
    calls: int = 0
    total_ms: float = 0.0


def _add(groups: dict[str, _Group], sql: str, ms: float) -> None:
    try:
        key = fingerprint(sql)
    except Exception:  # unparsable here: kept on its own, the advisor says why it skips it
        key = f"text:{sql}"
    group = groups.get(key)
    if group is None:
        group = groups[key] = _Group(sql, ms)
    elif ms > group.slowest_ms:
        group.query, group.slowest_ms = sql, ms
    group.calls += 1
    group.total_ms += ms


def _statements(groups: dict[str, _Group], source: str) -> list[Statement]:
    """One Statement per fingerprint, costliest first, timed by all its instances."""
    out = []
    for key, group in groups.items():
        digest = key if not key.startswith("text:") else hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
        out.append(Statement(int(digest, 16) & (2**63 - 1), group.query, group.calls, group.total_ms,
                             group.total_ms / group.calls, 0, source))  # fmt: skip
    return sorted(out, key=lambda s: -s.total_ms)


def _lines_only(lines: Iterable[str]) -> Iterable[str]:
    if isinstance(lines, str):  # iterating it would give characters, and silently no statement
        raise TypeError("pass an open file or a list of lines, not one string")
    return lines


def from_log(lines: Iterable[str]) -> list[Statement]:
    """Statements of a PostgreSQL log (stderr, csvlog or jsonlog), with their constants;
    each counted once though both log_min_duration_statement and auto_explain log it (see above)."""
    timed: dict[str, _Group] = {}
    explained: dict[str, _Group] = {}
    for logged in logged_statements(_lines_only(lines)):
        if PLANNABLE_TEXT.match(logged.sql):
            _add(explained if logged.explained else timed, logged.sql, logged.ms)
    for key, group in explained.items():
        timed.setdefault(key, group)
    return _statements(timed, SOURCE_LOG)


def _file_statements(lines: Iterable[str]) -> Iterator[str]:
    """The `;`-separated statements of a SQL file as it is read: text is held only up to the
    `;` that ends a statement (one inside a string or a function's body does not)."""
    pending = ""
    for line in lines:
        pending += line
        if ";" not in line:
            continue
        try:
            ends = [token.end + 1 for token in scan(pending) if token.name == "ASCII_59"]
        except Exception:  # inside a string or comment that goes on
            continue
        if not ends:
            continue
        try:
            statements = split(pending[: ends[-1]])
        except Exception as exc:  # pglast's ParseError
            if "at end of input" in str(exc):  # a `;` inside a statement (BEGIN ATOMIC ... END): read on
                continue
            raise SqlUsageError(f"the statements file does not parse: {exc}") from None
        yield from statements
        pending = pending[ends[-1] :]
    if pending.strip():
        try:
            yield from split(pending)
        except Exception as exc:
            raise SqlUsageError(f"the statements file does not parse: {exc}") from None


def from_file(lines: Iterable[str]) -> list[Statement]:
    """The statements of a SQL file, `;`-separated: a file has no timings, so each occurrence counts
    1 ms and a statement that appears N times (constants aside, one fingerprint) weighs N."""
    groups: dict[str, _Group] = {}
    for sql in _file_statements(_lines_only(lines)):
        if sql.strip():
            _add(groups, sql.strip(), 1.0)
    return _statements(groups, SOURCE_FILE)
