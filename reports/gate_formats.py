"""The gate's result for CI: JUnit XML (one testcase per check) and Markdown (PR comments,
step summaries). Formatting only; the verdict comes from analysis.gate."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from loadwise.analysis.gate import GateResult
from loadwise.analysis.regression import REGRESSION


def junit(result: GateResult) -> str:
    cases: list[tuple[str, str, str | None]] = [("loadwise.run", "run completed", result.run_problem)]
    for r in result.thresholds:
        cases.append(("loadwise.thresholds", r.threshold.text, None if r.passed else r.describe()))
    for c in result.comparisons:
        cases.append((f"loadwise.baseline.{c.endpoint}", f"{c.endpoint} {c.metric}",
                      c.describe() if c.decision == REGRESSION else None))  # fmt: skip
    for h in result.history:
        cases.append((f"loadwise.history.{h.endpoint}", f"{h.endpoint} {h.metric}",
                      h.describe() if h.decision == REGRESSION else None))  # fmt: skip
    failures = sum(1 for *_, msg in cases if msg)
    suites = ET.Element("testsuites", tests=str(len(cases)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name=f"loadwise gate {result.run_id}", tests=str(len(cases)),
                          failures=str(failures), errors="0", skipped="0")  # fmt: skip
    for classname, name, message in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")
        if message:
            ET.SubElement(case, "failure", message=message, type="regression").text = message
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(result: GateResult) -> str:
    mark = "✅ PASS" if result.passed else "❌ FAIL"
    lines = [f"### loadwise gate: {mark}", "", f"Run `{result.run_id}`, window: {result.window}."]
    if result.failures:
        lines += ["", "**Failed:**", *[f"- {_cell(f)}" for f in result.failures]]
    if result.thresholds:
        lines += ["", "| threshold | measured | result |", "|---|---|---|"]
        for r in result.thresholds:
            measured = r.describe().split(" (limit")[0]
            lines.append(f"| `{_cell(r.threshold.text)}` | {_cell(measured)} | {'✅' if r.passed else '❌'} |")
    if result.comparisons:
        block = result.report_block()["tables"][0]
        lines += ["", f"**{block['title']}**", "", "| " + " | ".join(block["columns"]) + " |",
                  "|" + "---|" * len(block["columns"])]  # fmt: skip
        for row in block["rows"]:
            icon = {"regression": "❌ ", "improvement": "✅ "}.get(row[-1], "")
            lines.append("| " + " | ".join(_cell(c) for c in row[:-1]) + f" | {icon}{row[-1]} |")
    if result.history:
        lines += ["", "**Against the run history**", "", "| endpoint | metric | this run | regime mean | decision |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for h in result.history:
            mean = "–" if h.regime_mean is None else f"{h.regime_mean:.4g}"
            lines.append(f"| {_cell(h.endpoint)} | {h.metric} | {h.newest:.4g} | {mean} | {h.decision} |")
    return "\n".join(lines) + "\n"
