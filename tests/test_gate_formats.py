"""The gate's JUnit XML and Markdown escape endpoint names and messages for their format."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from loadwise.analysis.gate import GateResult, HistoryCheck
from loadwise.analysis.regression import REGRESSION, Comparison
from loadwise.analysis.thresholds import Threshold, ThresholdResult
from loadwise.reports.gate_formats import junit, markdown

EVIL = "/evil\x1b[31m\x01<script>alert(1)</script>|`x` [ok](https://evil.test) *b* & \"q\" \ud800\ufffe"
CONTROLS = ["\x1b", "\x01", "\ud800", "\ufffe"]


@pytest.fixture
def result() -> GateResult:
    threshold = Threshold(text=f"GET {EVIL}: p95<300ms", metric="p95_ms", statistic="p95", op="<", limit=300.0,
                          endpoint=EVIL, method="GET")  # fmt: skip
    return GateResult(
        run_id="20240101T000000Z-`evil`<b>",
        window="0s-60s <i>",
        thresholds=[ThresholdResult(threshold, 500.0, False)],
        baseline_id="base<img src=x onerror=alert(1)>",
        comparisons=[Comparison(f"GET {EVIL}", "p95_ms", 100.0, 200.0, 1.0, 0.8, 1.2, REGRESSION)],
        history=[HistoryCheck(f"GET {EVIL}", "p95_ms", 6, 200.0, 100.0, 120.0, 1.0, REGRESSION)],
        run_problem="run status is interrupted\x01",
    )


def test_junit_is_well_formed_xml_when_names_carry_control_characters(result: GateResult) -> None:
    text = junit(result)
    text.encode("utf-8")  # a lone surrogate would make the file unwritable
    root = ET.fromstring(text)
    suite = root.find("testsuite")
    assert suite is not None
    cases = list(suite.iter("testcase"))
    assert len(cases) == 4 and suite.get("failures") == "4"
    for case in cases:
        failure = case.find("failure")
        assert failure is not None
        for value in (case.get("name"), case.get("classname"), failure.get("message"), failure.text):
            assert value is not None and not any(c in value for c in CONTROLS)
    # the rest of the name survives, escaped in the file and restored by the parser
    names = [case.get("name") or "" for case in cases]
    assert any("<script>alert(1)</script>|`x`" in name and "\ufffd[31m\ufffd" in name for name in names)
    assert "<script>" not in text


def test_markdown_escapes_html_from_endpoint_names(result: GateResult) -> None:
    text = markdown(result)
    outside_code = re.sub(r"(`+).*?\1", "", text)  # HTML inside a code span is shown, not rendered
    for raw in ("<script", "</script>", "<img", "<b>", "<i>", *CONTROLS):
        assert raw not in outside_code
    assert not any(c in text for c in CONTROLS)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "[ok\\](https://evil.test)" in text  # no link to the target
    assert "\\*b\\*" in text and "&amp;" in text


def test_markdown_table_rows_keep_their_cells(result: GateResult) -> None:
    text = markdown(result)
    unescaped_pipe = re.compile(r"(?<!\\)\|")
    tables: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("|"):
            if not tables or not tables[-1]:
                tables.append([])
            tables[-1].append(line)
        elif tables and tables[-1]:
            tables.append([])
    tables = [t for t in tables if t]
    assert len(tables) == 3  # thresholds, baseline, history
    for table in tables:
        width = len(unescaped_pipe.findall(table[0]))
        assert all(len(unescaped_pipe.findall(row)) == width for row in table), table


def test_markdown_backticks_cannot_open_or_close_code_spans(result: GateResult) -> None:
    text = markdown(result)
    run_line = next(line for line in text.splitlines() if line.startswith("Run "))
    assert run_line.startswith("Run ``20240101T000000Z-`evil`<b>``,")  # a longer fence; HTML is inert inside
    threshold_row = next(line for line in text.splitlines() if line.startswith("| ``"))
    fence_end = threshold_row.index("`` |")
    assert "\\|" in threshold_row[:fence_end]  # GFM splits cells on '|' even inside code spans
    for line in text.splitlines():
        if line.startswith("| ``") or line.startswith("Run "):
            continue
        assert not re.search(r"(?<!\\)`", line), line


def test_plain_names_are_unchanged() -> None:
    threshold = Threshold(text="p95<300ms", metric="p95_ms", statistic="p95", op="<", limit=300.0)
    plain = GateResult(run_id="20240101T000000Z-shop", window="10s-60s",
                       thresholds=[ThresholdResult(threshold, 120.0, True)],
                       baseline_id="20231231T000000Z-shop",
                       comparisons=[Comparison("GET /products/[id]", "p95_ms", 100.0, 101.0, 0.01, -0.02, 0.03, "no change")])  # fmt: skip
    text = markdown(plain)
    assert "Run `20240101T000000Z-shop`" in text and "| `p95<300ms` |" in text and "GET /products/[id]" in text
    ET.fromstring(junit(plain))
