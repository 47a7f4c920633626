"""Statements with their constants for the index advisor: read from a PostgreSQL log (the
formats PostgreSQL 15 writes, checked against a real server below) and from a SQL file."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import psycopg
import pytest
from test_dbadvisor import advisor_role, throwaway_database

from loadwise.analysis.indexes import postgres, sources
from loadwise.analysis.indexes.usage import SqlUsageError, plannable

# PostgreSQL's stderr log with the default log_line_prefix ('%m [%p] '): a simple-protocol
# statement, an extended-protocol execute with its parameters (a quote doubled inside one;
# PostgreSQL 15 writes "parameters:", 12 and before "Parameters:"), a BEGIN (never planned),
# an auto_explain plan (PostgreSQL 16 adds Query Parameters), and a statement on two lines.
LOG = """\
2026-12-07 12:00:00.123 UTC [4242] LOG:  duration: 12.500 ms  statement: SELECT * FROM events WHERE at > '2024-06-01'
2026-12-07 12:00:00.200 UTC [4242] LOG:  duration: 2.500 ms  statement: SELECT * FROM events WHERE at > '2024-06-20'
2026-12-07 12:00:01.000 UTC [4242] LOG:  duration: 0.800 ms  execute <unnamed>: SELECT * FROM events WHERE tenant = $1 AND note = $2
2026-12-07 12:00:01.000 UTC [4242] DETAIL:  parameters: $1 = '7', $2 = 'it''s'
2026-12-07 12:00:01.100 UTC [4242] LOG:  duration: 0.100 ms  statement: BEGIN
2026-12-07 12:00:02.000 UTC [4243] LOG:  duration: 30.100 ms  plan:
\tQuery Text: SELECT * FROM events WHERE tenant = $1
\tQuery Parameters: $1 = '9'
\tSeq Scan on events  (cost=0.00..1693.00 rows=100 width=16)
\t  Filter: (tenant = 9)
2026-12-07 12:00:03.000 UTC [4243] LOG:  duration: 1.000 ms  statement: SELECT id
\tFROM events WHERE id = 3
2026-12-07 12:00:04.000 UTC [4243] LOG:  checkpoint starting: time
"""


def test_a_log_gives_each_statement_with_its_constants():
    found = {s.query: s for s in sources.from_log(io.StringIO(LOG))}
    ranged = found["SELECT * FROM events WHERE at > '2024-06-01'"]  # the slower of the two: its constants planned
    assert (ranged.calls, ranged.total_ms, ranged.source) == (2, 15.0, sources.SOURCE_LOG)
    assert "SELECT * FROM events WHERE tenant = '7' AND note = 'it''s'" in found
    # auto_explain's tenant = '9' and the execute's tenant = '7' AND note differ in shape: two statements
    assert found["SELECT * FROM events WHERE tenant = '9'"].total_ms == 30.1
    assert "SELECT id\nFROM events WHERE id = 3" in found
    assert list(found)[0] == "SELECT * FROM events WHERE tenant = '9'"  # costliest first
    assert len(found) == 4  # the checkpoint line is no statement


def test_a_sql_file_gives_each_statement_once():
    found = sources.from_file(io.StringIO("SELECT * FROM t WHERE a = 1;\nSELECT * FROM t WHERE a = 2;\nSELECT * FROM u WHERE b = 'x;y';\n"))
    assert [(s.query, s.calls, s.source) for s in found] == [("SELECT * FROM t WHERE a = 1", 2, sources.SOURCE_FILE),
                                                            ("SELECT * FROM u WHERE b = 'x;y'", 1, sources.SOURCE_FILE)]  # fmt: skip


# The entries below are PostgreSQL 15.18's own (log_destination = 'stderr,csvlog,jsonlog', the
# default log_line_prefix, auto_explain.log_min_duration = 0), cut to the entries each test needs.
# auto_explain alone (log_min_duration_statement = -1), in its four log_format values: text, whose
# statement goes on over tab-indented lines up to the plan's first node, then json, yaml and xml.
AUTO_EXPLAIN_PG15 = """\
2026-12-07 15:40:49.796 UTC [2557] LOG:  duration: 0.004 ms  plan:
\tQuery Text: SELECT id
\t  FROM events
\t WHERE tenant = $1
\t   AND note <> 'Query Parameters: $1'
\tSeq Scan on events  (cost=0.00..28.00 rows=6 width=4)
\t  Filter: ((note <> 'Query Parameters: $1'::text) AND (tenant = '7'::smallint))
2026-12-07 15:40:49.797 UTC [2557] LOG:  duration: 0.002 ms  plan:
\t{
\t  "Query Text": "SELECT id\\n  FROM events\\n WHERE note = 'a\\"b'",
\t  "Plan": {
\t    "Node Type": "Seq Scan",
\t    "Parallel Aware": false,
\t    "Async Capable": false,
\t    "Relation Name": "events",
\t    "Alias": "events",
\t    "Startup Cost": 0.00,
\t    "Total Cost": 25.00,
\t    "Plan Rows": 6,
\t    "Plan Width": 4,
\t    "Filter": "(note = 'a\\"b'::text)"
\t  }
\t}
2026-12-07 15:40:49.815 UTC [2557] LOG:  duration: 0.004 ms  plan:
\tQuery Text: "SELECT tenant\\n  FROM events\\n WHERE id = 3"
\tPlan: 
\t  Node Type: "Seq Scan"
\t  Parallel Aware: false
\t  Async Capable: false
\t  Relation Name: "events"
\t  Alias: "events"
\t  Startup Cost: 0.00
\t  Total Cost: 25.00
\t  Plan Rows: 6
\t  Plan Width: 4
\t  Filter: "(id = 3)"
2026-12-07 15:40:49.816 UTC [2557] LOG:  duration: 0.002 ms  plan:
\t<explain xmlns="http://www.postgresql.org/2009/explain">
\t  <Query-Text>SELECT note FROM events
\t WHERE id &lt; 4 AND note &lt;&gt; '&lt;&amp;&gt;'</Query-Text>
\t  <Plan>
\t    <Node-Type>Seq Scan</Node-Type>
\t    <Parallel-Aware>false</Parallel-Aware>
\t    <Async-Capable>false</Async-Capable>
\t    <Relation-Name>events</Relation-Name>
\t    <Alias>events</Alias>
\t    <Startup-Cost>0.00</Startup-Cost>
\t    <Total-Cost>28.00</Total-Cost>
\t    <Plan-Rows>398</Plan-Rows>
\t    <Plan-Width>32</Plan-Width>
\t    <Filter>((id &lt; 4) AND (note &lt;&gt; '&lt;&amp;&gt;'::text))</Filter>
\t  </Plan>
\t</explain>
"""

def test_auto_explain_gives_the_whole_statement_in_every_log_format():
    found = [(s.query, s.total_ms) for s in sources.from_log(io.StringIO(AUTO_EXPLAIN_PG15))]
    assert found == [("SELECT id\n  FROM events\n WHERE tenant = $1\n   AND note <> 'Query Parameters: $1'", 0.004),  # text
                     ("SELECT tenant\n  FROM events\n WHERE id = 3", 0.004),  # yaml
                     ("SELECT id\n  FROM events\n WHERE note = 'a\"b'", 0.002),  # json
                     ("SELECT note FROM events\n WHERE id < 4 AND note <> '<&>'", 0.002)]  # xml  # fmt: skip


# PostgreSQL 16 adds the values of the parameters (auto_explain.log_parameter_max_length): in text
# a `Query Parameters:` line after the statement (a value's newline goes on to the next line, as
# any line of a message), in json a "Query Parameters" key. Written here as PostgreSQL 16's
# explain.c writes them (ExplainQueryParameters): this suite's server is 15.
AUTO_EXPLAIN_PG16 = """\
2026-12-07 12:00:02.000 UTC [4243] LOG:  duration: 30.100 ms  plan:
\tQuery Text: SELECT id
\t  FROM events
\t WHERE note = $1 AND tenant = $2
\tQuery Parameters: $1 = 'two
\tlines', $2 = '9'
\tSeq Scan on events  (cost=0.00..1693.00 rows=100 width=16)
\t  Filter: ((note = 'two
\tlines'::text) AND (tenant = 9))
2026-12-07 12:00:03.000 UTC [4243] LOG:  duration: 3.000 ms  plan:
\t{
\t  "Query Text": "SELECT id, note FROM events\\n WHERE id > $1",
\t  "Query Parameters": "$1 = '5'",
\t  "Plan": {
\t    "Node Type": "Seq Scan",
\t    "Filter": "(id > 5)"
\t  }
\t}
"""


def test_auto_explain_parameters_are_bound_in_text_and_json():
    found = [(s.query, s.total_ms) for s in sources.from_log(io.StringIO(AUTO_EXPLAIN_PG16))]
    assert found == [("SELECT id\n  FROM events\n WHERE note = 'two\nlines' AND tenant = '9'", 30.1),
                     ("SELECT id, note FROM events\n WHERE id > '5'", 3.0)]  # fmt: skip


# Both log_min_duration_statement = 0 and auto_explain: one extended-protocol execution is a bind
# line (not counted), an execute line with its parameters ($10 among them, and a '$1' that is a
# string) and auto_explain's plan of it; then a simple-protocol statement whose plan (json) comes
# before its statement line.
LOGGED_TWICE = """\
2026-12-07 15:40:21.220 UTC [2297] LOG:  duration: 0.788 ms  bind <unnamed>: SELECT id FROM events
\t WHERE tenant IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
\t   AND note <> '$1'
2026-12-07 15:40:21.220 UTC [2297] DETAIL:  parameters: $1 = '1', $2 = '2', $3 = '3', $4 = '4', $5 = '5', $6 = '6', $7 = '7', $8 = '8', $9 = '9', $10 = '10'
2026-12-07 15:40:21.220 UTC [2297] LOG:  duration: 0.011 ms  execute <unnamed>: SELECT id FROM events
\t WHERE tenant IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
\t   AND note <> '$1'
2026-12-07 15:40:21.220 UTC [2297] DETAIL:  parameters: $1 = '1', $2 = '2', $3 = '3', $4 = '4', $5 = '5', $6 = '6', $7 = '7', $8 = '8', $9 = '9', $10 = '10'
2026-12-07 15:40:21.220 UTC [2297] LOG:  duration: 0.007 ms  plan:
\tQuery Text: SELECT id FROM events
\t WHERE tenant IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
\t   AND note <> '$1'
\tSeq Scan on events  (cost=0.03..31.03 rows=60 width=4)
\t  Filter: ((note <> '$1'::text) AND (tenant = ANY ('{1,2,3,4,5,6,7,8,9,10}'::integer[])))
2026-12-07 15:40:21.221 UTC [2297] LOG:  duration: 0.040 ms  statement: SET auto_explain.log_format = json
2026-12-07 15:40:21.221 UTC [2297] LOG:  duration: 0.003 ms  plan:
\t{
\t  "Query Text": "SELECT id\\n  FROM events\\n WHERE tenant = 8",
\t  "Plan": {
\t    "Node Type": "Seq Scan",
\t    "Parallel Aware": false,
\t    "Async Capable": false,
\t    "Relation Name": "events",
\t    "Alias": "events",
\t    "Startup Cost": 0.00,
\t    "Total Cost": 25.00,
\t    "Plan Rows": 6,
\t    "Plan Width": 4,
\t    "Filter": "(tenant = 8)"
\t  }
\t}
2026-12-07 15:40:21.221 UTC [2297] LOG:  duration: 0.124 ms  statement: SELECT id
\t  FROM events
\t WHERE tenant = 8
"""
IN_LIST = "SELECT id FROM events\n WHERE tenant IN ('1', '2', '3', '4', '5', '6', '7', '8', '9', '10')\n   AND note <> '$1'"


def test_an_execution_both_duration_and_auto_explain_log_is_counted_once():
    found = [(s.query, s.calls, s.total_ms) for s in sources.from_log(io.StringIO(LOGGED_TWICE))]
    assert found == [("SELECT id\n  FROM events\n WHERE tenant = 8", 1, 0.124), (IN_LIST, 1, 0.011)]


# csvlog (the message in column 14, the detail in 15, a message's newlines inside its quotes) and
# jsonlog ("message", "detail"): a CREATE TABLE, the bind and execute of the IN list with auto_explain's
# text plan of it, and a json plan alone (its statement line left out): each statement once.
CSVLOG = """\
2026-12-07 15:40:21.216 UTC,"postgres","postgres",2297,"127.0.0.1:43930",6b16d365.8f9,1,"CREATE TABLE",2026-12-07 15:40:21 UTC,3/0,0,LOG,00000,"duration: 9.097 ms  statement: DROP TABLE IF EXISTS events; CREATE TABLE events (id int, tenant int, note text)",,,,,,,,,"","client backend",,-1467683471224565916
2026-12-07 15:40:21.220 UTC,"postgres","postgres",2297,"127.0.0.1:43930",6b16d365.8f9,3,"BIND",2026-12-07 15:40:21 UTC,3/3,0,LOG,00000,"duration: 0.788 ms  bind <unnamed>: SELECT id FROM events
 WHERE tenant IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
   AND note <> '$1'","parameters: $1 = '1', $2 = '2', $3 = '3', $4 = '4', $5 = '5', $6 = '6', $7 = '7', $8 = '8', $9 = '9', $10 = '10'",,,,,,,,"","client backend",,1193117036362371973
2026-12-07 15:40:21.220 UTC,"postgres","postgres",2297,"127.0.0.1:43930",6b16d365.8f9,4,"SELECT",2026-12-07 15:40:21 UTC,3/3,0,LOG,00000,"duration: 0.011 ms  execute <unnamed>: SELECT id FROM events
 WHERE tenant IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
   AND note <> '$1'","parameters: $1 = '1', $2 = '2', $3 = '3', $4 = '4', $5 = '5', $6 = '6', $7 = '7', $8 = '8', $9 = '9', $10 = '10'",,,,,,,,"","client backend",,1193117036362371973
2026-12-07 15:40:21.220 UTC,"postgres","postgres",2297,"127.0.0.1:43930",6b16d365.8f9,5,"SELECT",2026-12-07 15:40:21 UTC,3/3,0,LOG,00000,"duration: 0.007 ms  plan:
Query Text: SELECT id FROM events
 WHERE tenant IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
   AND note <> '$1'
Seq Scan on events  (cost=0.03..31.03 rows=60 width=4)
  Filter: ((note <> '$1'::text) AND (tenant = ANY ('{1,2,3,4,5,6,7,8,9,10}'::integer[])))",,,,,,,,,"","client backend",,1193117036362371973
2026-12-07 15:40:21.221 UTC,"postgres","postgres",2297,"127.0.0.1:43930",6b16d365.8f9,7,"SELECT",2026-12-07 15:40:21 UTC,3/5,0,LOG,00000,"duration: 0.003 ms  plan:
{
  ""Query Text"": ""SELECT id\\n  FROM events\\n WHERE tenant = 8"",
  ""Plan"": {
    ""Node Type"": ""Seq Scan"",
    ""Parallel Aware"": false,
    ""Async Capable"": false,
    ""Relation Name"": ""events"",
    ""Alias"": ""events"",
    ""Startup Cost"": 0.00,
    ""Total Cost"": 25.00,
    ""Plan Rows"": 6,
    ""Plan Width"": 4,
    ""Filter"": ""(tenant = 8)""
  }
}",,,,,,,,,"","client backend",,2510952294468566860
"""

JSONLOG = """\
{"timestamp":"2026-12-07 15:40:21.216 UTC","user":"postgres","dbname":"postgres","pid":2297,"remote_host":"127.0.0.1","remote_port":43930,"session_id":"6b16d365.8f9","line_num":1,"ps":"CREATE TABLE","session_start":"2026-12-07 15:40:21 UTC","vxid":"3/0","txid":0,"error_severity":"LOG","message":"duration: 9.097 ms  statement: DROP TABLE IF EXISTS events; CREATE TABLE events (id int, tenant int, note text)","backend_type":"client backend","query_id":-1467683471224565916}
{"timestamp":"2026-12-07 15:40:21.220 UTC","user":"postgres","dbname":"postgres","pid":2297,"remote_host":"127.0.0.1","remote_port":43930,"session_id":"6b16d365.8f9","line_num":3,"ps":"BIND","session_start":"2026-12-07 15:40:21 UTC","vxid":"3/3","txid":0,"error_severity":"LOG","message":"duration: 0.788 ms  bind <unnamed>: SELECT id FROM events\\n WHERE tenant IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)\\n   AND note <> '$1'","detail":"parameters: $1 = '1', $2 = '2', $3 = '3', $4 = '4', $5 = '5', $6 = '6', $7 = '7', $8 = '8', $9 = '9', $10 = '10'","backend_type":"client backend","query_id":1193117036362371973}
{"timestamp":"2026-12-07 15:40:21.220 UTC","user":"postgres","dbname":"postgres","pid":2297,"remote_host":"127.0.0.1","remote_port":43930,"session_id":"6b16d365.8f9","line_num":4,"ps":"SELECT","session_start":"2026-12-07 15:40:21 UTC","vxid":"3/3","txid":0,"error_severity":"LOG","message":"duration: 0.011 ms  execute <unnamed>: SELECT id FROM events\\n WHERE tenant IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)\\n   AND note <> '$1'","detail":"parameters: $1 = '1', $2 = '2', $3 = '3', $4 = '4', $5 = '5', $6 = '6', $7 = '7', $8 = '8', $9 = '9', $10 = '10'","backend_type":"client backend","query_id":1193117036362371973}
{"timestamp":"2026-12-07 15:40:21.220 UTC","user":"postgres","dbname":"postgres","pid":2297,"remote_host":"127.0.0.1","remote_port":43930,"session_id":"6b16d365.8f9","line_num":5,"ps":"SELECT","session_start":"2026-12-07 15:40:21 UTC","vxid":"3/3","txid":0,"error_severity":"LOG","message":"duration: 0.007 ms  plan:\\nQuery Text: SELECT id FROM events\\n WHERE tenant IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)\\n   AND note <> '$1'\\nSeq Scan on events  (cost=0.03..31.03 rows=60 width=4)\\n  Filter: ((note <> '$1'::text) AND (tenant = ANY ('{1,2,3,4,5,6,7,8,9,10}'::integer[])))","backend_type":"client backend","query_id":1193117036362371973}
{"timestamp":"2026-12-07 15:40:21.221 UTC","user":"postgres","dbname":"postgres","pid":2297,"remote_host":"127.0.0.1","remote_port":43930,"session_id":"6b16d365.8f9","line_num":7,"ps":"SELECT","session_start":"2026-12-07 15:40:21 UTC","vxid":"3/5","txid":0,"error_severity":"LOG","message":"duration: 0.003 ms  plan:\\n{\\n  \\"Query Text\\": \\"SELECT id\\\\n  FROM events\\\\n WHERE tenant = 8\\",\\n  \\"Plan\\": {\\n    \\"Node Type\\": \\"Seq Scan\\",\\n    \\"Parallel Aware\\": false,\\n    \\"Async Capable\\": false,\\n    \\"Relation Name\\": \\"events\\",\\n    \\"Alias\\": \\"events\\",\\n    \\"Startup Cost\\": 0.00,\\n    \\"Total Cost\\": 25.00,\\n    \\"Plan Rows\\": 6,\\n    \\"Plan Width\\": 4,\\n    \\"Filter\\": \\"(tenant = 8)\\"\\n  }\\n}","backend_type":"client backend","query_id":2510952294468566860}
"""


@pytest.mark.parametrize("log", [CSVLOG, JSONLOG], ids=["csvlog", "jsonlog"])
def test_csvlog_and_jsonlog_are_read_as_stderr_is(log):
    found = [(s.query, s.calls, s.total_ms) for s in sources.from_log(io.StringIO(log, newline=""))]
    assert found == [(IN_LIST, 1, 0.011), ("SELECT id\n  FROM events\n WHERE tenant = 8", 1, 0.003)]


def test_parameters_are_bound_only_where_the_statement_has_them():
    """A `$1` in a string, a comment or a dollar-quoted string is text; `$10` is not `$1` and a 0."""
    log = ("2026-12-07 12:00:01.000 UTC [42] LOG:  duration: 1.000 ms  execute S_1: SELECT $$ $1 $$, '$1' -- $1\n"
           "\tFROM t WHERE a = $1 /* $2 */ AND b = $10 AND c = E'\\'$1'\n"
           "2026-12-07 12:00:01.000 UTC [42] DETAIL:  parameters: $1 = 'one', $2 = 'two', $10 = 'ten'\n")  # fmt: skip
    (statement,) = sources.from_log(io.StringIO(log))
    assert statement.query == "SELECT $$ $1 $$, '$1' -- $1\nFROM t WHERE a = 'one' /* $2 */ AND b = 'ten' AND c = E'\\'$1'"


def _lines(text: str, read: list[int]) -> Iterator[str]:
    """`text`'s lines one at a time, counting how many were taken (as a file hands them out)."""
    for line in io.StringIO(text):
        read[0] += 1
        yield line


def test_a_log_and_a_sql_file_are_read_line_by_line():
    read = [0]
    found = sources.from_log(_lines(LOG, read))
    assert read[0] == len(LOG.splitlines()) and len(found) == 4  # one pass over an iterator: no read() of it all
    sql = ("SELECT * FROM t WHERE a = 1;\nSELECT * FROM u\n WHERE b = 'x;\ny';\n"
           "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\nSELECT * FROM t WHERE a = 2\n")  # fmt: skip
    assert [(s.query, s.calls) for s in sources.from_file(_lines(sql, [0]))] == [
        ("SELECT * FROM t WHERE a = 1", 2), ("SELECT * FROM u\n WHERE b = 'x;\ny'", 1),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END", 1)]  # fmt: skip
    with pytest.raises(SqlUsageError, match="does not parse"):
        sources.from_file(_lines("SELECT 1;\nSELEC 2;\nSELECT 3;\n", [0]))
    with pytest.raises(TypeError):  # a string would be read a character at a time, finding nothing
        sources.from_log(LOG)


def test_only_pg_stat_statements_typed_parameters_are_rewritten():
    """`timestamptz $1` (pg_stat_statements' typed literal) becomes a cast; the same words in a
    string, a comment or a dollar-quoted string stay, as does a log statement with its constants."""
    normalized = ("SELECT * FROM events WHERE at > timestamptz $1 AND d = timestamp with time zone $2 "
                  "AND note <> 'date $3' /* interval $4 */ AND x = $$text $5$$ -- int $6\n AND y > Interval $10")  # fmt: skip
    assert plannable(normalized) == ("SELECT * FROM events WHERE at > $1::timestamptz AND d = $2::timestamp with time zone "
                                     "AND note <> 'date $3' /* interval $4 */ AND x = $$text $5$$ -- int $6\n AND y > $10::interval")  # fmt: skip
    for statement in sources.from_log(io.StringIO(LOG)):
        assert plannable(statement.query) == statement.query


def test_one_pattern_says_which_statements_are_planned():
    """pg_stat_statements and the log are filtered alike; an INSERT only when a SELECT in it may
    gain from an index."""
    assert postgres._PLANNABLE is sources.PLANNABLE_TEXT
    planned = ["SELECT 1", "with x AS (SELECT 1) SELECT * FROM x", "UPDATE t SET a = 1 WHERE b = 2", "DELETE FROM t",
               "INSERT INTO t SELECT * FROM u WHERE a = $1", "/* app:shop */ SELECT 1", "(SELECT 1) UNION (SELECT 2)",
               "-- tag\nSELECT 1"]  # fmt: skip
    never = ["INSERT INTO t (a) VALUES ($1)", "BEGIN", "SET x = 1", "COMMIT", "CREATE INDEX ON t (a)", "selection"]
    assert [q for q in planned if not sources.PLANNABLE_TEXT.match(q)] == []
    assert [q for q in never if sources.PLANNABLE_TEXT.match(q)] == []


def test_an_invalid_index_is_no_existing_index(postgres_server):
    """A failed CREATE INDEX CONCURRENTLY leaves an index marked invalid: it serves no query, so
    it must not count as covering a candidate. On real PostgreSQL."""
    schema = "CREATE TABLE dup (id int, v int); INSERT INTO dup VALUES (1, 1), (2, 1); CREATE INDEX dup_id ON dup (id);"
    with throwaway_database(postgres_server.dsn, "lw_invalid", schema) as (dsn, conn):
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY dup_v ON dup (v)")
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'dup_v'::regclass").fetchone() == (False,)
        with conn.cursor() as cur:
            names = [index.name for index in postgres.read_indexes(cur)]
    assert names == ["public.dup_id"]


MULTI_LINE = "SELECT id, tenant\n  FROM events\n WHERE tenant IN ({}) -- not $2\n   AND at > '$1'"


def test_a_real_servers_log_gives_each_execution_once_and_whole(postgres_server):
    """PostgreSQL 15 with log_min_duration_statement = 0 and auto_explain (text, then json) on one
    session: multi-line statements with ten bound parameters, each execution counted once, and
    statements only auto_explain logged read whole."""
    with throwaway_database(postgres_server.dsn, "lw_explain", "CREATE TABLE events (id int, tenant int, at text);") as (dsn, _):
        start = postgres_server.log.stat().st_size
        with psycopg.connect(dsn, autocommit=True) as app:  # the suite's role is a superuser: it may LOAD and SET these
            app.execute("LOAD 'auto_explain'")
            app.execute("SET auto_explain.log_min_duration = 0")
            app.execute("SET log_min_duration_statement = 0")
            for first in (1, 2, 3):  # extended protocol: psycopg binds the ten values server-side
                app.execute(MULTI_LINE.format(", ".join(["%s"] * 10)), tuple(range(first, first + 10))).fetchall()
            app.execute("SET log_min_duration_statement = -1")
            app.execute("SELECT id\n  FROM events\n WHERE at = 'x'").fetchall()
            app.execute("SELECT id\n  FROM events\n WHERE at = 'y'").fetchall()
            app.execute("SET auto_explain.log_format = json")
            app.execute("SELECT tenant\n  FROM events\n WHERE id = 7").fetchall()
        with open(postgres_server.log, encoding="utf-8", errors="replace", newline="") as handle:
            handle.seek(start)
            found = [(s.query, s.calls) for s in sources.from_log(handle)]
    listed = [q for q, _ in found if q.startswith("SELECT id, tenant")]
    assert [(q, c) for q, c in found if q.startswith("SELECT id, tenant")] == [(listed[0], 3)], found
    assert listed[0] in {MULTI_LINE.format(", ".join(f"'{n}'" for n in range(first, first + 10))) for first in (1, 2, 3)}
    assert ("SELECT id\n  FROM events\n WHERE at = 'x'", 2) in found and ("SELECT tenant\n  FROM events\n WHERE id = 7", 1) in found


EVENTS = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE events (id int, tenant int, at timestamptz);
INSERT INTO events SELECT n, n % 50, timestamptz '2024-01-01' + n * interval '1 minute' FROM generate_series(1, 200000) n;
ANALYZE events;
"""


@pytest.mark.slow
def test_a_range_planned_with_its_logged_value_gets_the_index_the_generic_plan_misses(postgres_server, tmp_path, cli_here):
    """`WHERE at > $1` with a value near the end of the table: pg_stat_statements keeps `$1`, whose
    generic plan assumes a third of the rows match (no index pays off); the log keeps the value
    (one row in a thousand match), and that plan wants an index on `at`. Both from real PostgreSQL."""
    with throwaway_database(postgres_server.dsn, "lw_sources", EVENTS) as (dsn, conn):
        role = advisor_role(dsn)
        database = dsn.rsplit("/", 1)[1]
        conn.execute(f"ALTER DATABASE {database} SET log_min_duration_statement = 0")
        conn.execute("SELECT pg_stat_statements_reset()")
        start = postgres_server.log.stat().st_size
        with psycopg.connect(dsn) as app:  # a new session: the setting applies; psycopg binds $1 server-side
            for _ in range(5):
                app.execute("SELECT id, tenant FROM events WHERE at > %s", ("2024-05-18 00:00:00+00",)).fetchall()
        with open(postgres_server.log, encoding="utf-8", errors="replace") as handle:
            handle.seek(start)
            (tmp_path / "postgresql.log").write_text(handle.read())
        generic = cli_here("advise", "db", "--dsn", role, "--json")
        logged = cli_here("advise", "db", "--dsn", role, "--pg-log", str(tmp_path / "postgresql.log"), "--json")
    assert generic.code == 0 and logged.code == 0, (generic.stderr, logged.stderr)
    generic_indexes = [(r["table"], r["columns"]) for r in json.loads(generic.stdout)["indexes"]]
    result = json.loads(logged.stdout)
    assert ("public.events", ["at"]) not in generic_indexes, generic_indexes  # the premise: 1/3 of the rows assumed
    (index,) = [r for r in result["indexes"] if r["table"] == "public.events"]
    assert index["columns"] == ["at"] and result["window"].startswith("the PostgreSQL log postgresql.log")
    (statement,) = index["statements"]
    assert statement["source"] == sources.SOURCE_LOG and statement["calls"] == 5
    assert "'2024-05-18 00:00:00+00'" in statement["query"] and statement["assumed_selectivity"] is None
