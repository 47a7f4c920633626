"""The gate's result for CI: JUnit XML (one testcase per check) and Markdown (PR comments,
step summaries). Formatting only; the verdict comes from analysis.gate."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from loadwise.analysis.gate import GateResult
from loadwise.analysis.regression import NOT_JUDGED, REGRESSION

# Endpoint names, error messages, run ids and threshold texts come from outside (the
# locustfile, the target, the command line), so every one is escaped for the format it
# lands in; fixed text written here is not.

# Characters XML 1.0 cannot hold at all, not even as character references (C0 controls but
# tab/newline/return, lone surrogates, U+FFFE/U+FFFF): ElementTree escapes markup but writes
# these through, and then no JUnit consumer can parse the file.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Controls, as well as C1 controls that XML allows but that mean nothing in a CI summary.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
# Markdown punctuation that can open inline syntax mid-line: emphasis, code spans,
# strikethrough, table cells, and a link or image, which needs "](" or "][" (a lone "[id]"
# links nothing, as no reference definition can be written by outside text, so endpoint
# names such as "/products/[id]" stay readable). Line-start syntax ('#', '-', '>') cannot
# arise: outside text never starts a line here. '<' and '&' are entities (html.escape).
_MD_PUNCTUATION = re.compile(r"([\\`*_~|]|\](?=[(\[]))")
REPLACEMENT = "\ufffd"


def _xml(text: str | None) -> str | None:
    """`text` with the characters XML 1.0 forbids replaced; ElementTree escapes the rest."""
    return None if text is None else _XML_ILLEGAL.sub(REPLACEMENT, text)


def junit(result: GateResult) -> str:
    cases: list[tuple[str, str, str | None]] = [("loadwise.run", "run completed", result.run_problem)]
    for r in result.thresholds:
        cases.append(("loadwise.thresholds", r.threshold.text, None if r.passed else r.describe()))
    skipped: dict[int, str] = {}  # case index -> why the metric was not judged
    for c in result.comparisons:
        if c.decision == NOT_JUDGED:
            skipped[len(cases)] = c.noise
        cases.append((f"loadwise.baseline.{c.endpoint}", f"{c.endpoint} {c.metric}",
                      c.describe() if c.decision == REGRESSION else None))  # fmt: skip
    for h in result.history:
        cases.append((f"loadwise.history.{h.endpoint}", f"{h.endpoint} {h.metric}",
                      h.describe() if h.decision == REGRESSION else None))  # fmt: skip
    failures = sum(1 for *_, msg in cases if msg)
    suites = ET.Element("testsuites", tests=str(len(cases)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name=_xml(f"loadwise gate {result.run_id}"), tests=str(len(cases)),
                          failures=str(failures), errors="0", skipped=str(len(skipped)))  # fmt: skip
    for index, (classname, name, message) in enumerate(cases):
        case = ET.SubElement(suite, "testcase", classname=_xml(classname), name=_xml(name), time="0")
        if index in skipped:
            ET.SubElement(case, "skipped", message=_xml(skipped[index]))
        if message:
            ET.SubElement(case, "failure", message=_xml(message), type="regression").text = _xml(message)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _plain(text: object) -> str:
    """One line of text: line breaks and other controls become a space or U+FFFD."""
    text = re.sub(r"[\r\n\t]+", " ", str(text))
    return _CONTROLS.sub(REPLACEMENT, _XML_ILLEGAL.sub(REPLACEMENT, text))


def _cell(text: object) -> str:
    """Outside text as literal Markdown: HTML-significant characters become entities (GitHub
    would render a raw <script> or <img onerror>), Markdown punctuation is backslash-escaped
    (a '|' would split a table cell, a '`' open a code span)."""
    return _MD_PUNCTUATION.sub(r"\\\1", html.escape(_plain(text), quote=True))


def _code(text: object) -> str:
    """Outside text as a Markdown code span. Inside a code span neither entities nor
    backslash escapes are decoded, so HTML is already inert; a backtick is fenced by a longer
    run of backticks, and a '|' is escaped as GFM tables require even inside code spans."""
    text = _plain(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""  # CommonMark strips one space each side
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def markdown(result: GateResult) -> str:
    mark = "✅ PASS" if result.passed else "❌ FAIL"
    lines = [f"### loadwise gate: {mark}", "", f"Run {_code(result.run_id)}, window: {_cell(result.window)}."]
    if result.failures:
        lines += ["", "**Failed:**", *[f"- {_cell(f)}" for f in result.failures]]
    if result.thresholds:
        lines += ["", "| threshold | measured | result |", "|---|---|---|"]
        for r in result.thresholds:
            measured = r.describe().split(" (limit")[0]
            lines.append(f"| {_code(r.threshold.text)} | {_cell(measured)} | {'✅' if r.passed else '❌'} |")
    if result.comparisons:
        block = result.report_block()["tables"][0]
        lines += ["", f"**{_cell(block['title'])}**", "", "| " + " | ".join(_cell(c) for c in block["columns"]) + " |",
                  "|" + "---|" * len(block["columns"])]  # fmt: skip
        for row in block["rows"]:
            icon = {"regression": "❌ ", "improvement": "✅ "}.get(row[-1], "")
            lines.append("| " + " | ".join(_cell(c) for c in row[:-1]) + f" | {icon}{_cell(row[-1])} |")
    if result.history:
        lines += ["", "**Against the run history**", "", "| endpoint | metric | this run | regime mean | decision |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for h in result.history:
            mean = "–" if h.regime_mean is None else f"{h.regime_mean:.4g}"
            lines.append(f"| {_cell(h.endpoint)} | {_cell(h.metric)} | {h.newest:.4g} | {mean} | {_cell(h.decision)} |")
    return "\n".join(lines) + "\n"
