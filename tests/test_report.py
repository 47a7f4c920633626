"""The HTML report of real runs, opened in a real headless Chromium with the network off."""

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from browser import open_page
from conftest import run_cli
from synthetic import make_run

from loadwise.analysis.rundir import RunDir, RunInfo
from loadwise.run.demo_target import DemoTarget

HEADINGS = ["Load over time", "Response time over time", "Endpoints", "Latency distribution", "Errors",
            "Server metrics", "Not analysed yet", "Run metadata"]
# Analyses a plain run has not had yet: one line each under "Not analysed yet", not empty sections.
NOT_YET = ["Capacity", "Regression against the baseline", "Advice verified", "Database indexes"]
PROBES = {
    "headings": "Array.from(document.querySelectorAll('h2')).map(h => h.textContent.trim())",
    "charts": "Array.from(document.querySelectorAll('img.chart')).map(i => [i.naturalWidth, i.getBoundingClientRect().height])",
    "pwned": "typeof window.__pwned",
    "text": "document.body.innerText",
    "sorted": """(() => { const t = document.querySelector('#endpoints table'); if (!t) return null;
                 t.tHead.rows[0].cells[1].click();
                 return Array.from(t.tBodies[0].rows).map(r => Number(r.cells[1].dataset.sort)); })()""",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A short run against the demo target and one against a copy with /products/{id} 30 ms slower,
    made at the same time: two targets, two light loads (12 users with think time) on a machine
    they do not fill, so the 30 ms is the difference the comparison shows."""
    out = tmp_path_factory.mktemp("report-runs")

    def one(extra: list[str]) -> str:
        with DemoTarget(rows=2000, extra_args=extra) as shop:
            result = run_cli("run", "browse", "--host", shop.url, "--users", "12", "--spawn-rate", "12",
                             "--duration", "4s", "--interval", "1", "--scrape", f"{shop.url}/metrics",
                             "--out", str(out / ("slow" if extra else "base")))  # fmt: skip
        assert result.code == 0, result.stderr
        return result.last_line

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, ([], ["--inject-latency", "/products/{id}=30"])))


def _browse(html: Path, tmp_path: Path) -> dict:
    shot = tmp_path / f"{html.stem}.png"
    check = open_page(html, PROBES, screenshot=shot)
    assert shot.stat().st_size > 10_000
    assert check.console_errors == []
    assert [u for u in check.requests if not u.startswith(("file://", "data:"))] == []
    assert [u for u in check.requests if u.startswith("file://")] == [html.resolve().as_uri()]
    return check.results


@pytest.mark.slow
def test_report_of_a_real_run_in_chromium(demo_run, tmp_path, cli_here):
    """The session's demo run (`loadwise demo`: a step-rate run against the demo shop, its /metrics
    scraped, its capacity analysed), reported again with thresholds, on a copy (test_verify takes
    the original as its BEFORE). Its report has every section of a plain step run, and the
    open-model and capacity sections too. (The "not analysed yet" lines of a plain run, Capacity
    among them: test_partial_runs_render_with_notes.)"""
    run = shutil.copytree(Path(demo_run.last_line), tmp_path / "demo")
    # The demo goes past the shop's knee (p95 of seconds at its last steps): bounds it meets.
    result = cli_here("report", str(run), "--threshold", "p95<60s", "--threshold", "error_rate<5%")
    assert result.code == 0, result.stderr
    html = Path(result.last_line)
    assert html == run / "report.html"
    seen = _browse(html, tmp_path)
    analysed = ["Capacity", "Open model: arrivals and latency from the intended start"]
    assert all(h in seen["headings"] for h in HEADINGS + ["Steps (steady state)"] + analysed), seen["headings"]
    waiting = [title for title in NOT_YET if title != "Capacity"]
    assert not set(waiting) & set(seen["headings"]) and all(f"{title}:" in seen["text"] for title in waiting)
    # load, latency, steps, distribution, server metrics; the open model's and the capacity fit's
    assert len(seen["charts"]) == 7 and all(w > 100 and h > 100 for w, h in seen["charts"])
    assert seen["sorted"] == sorted(seen["sorted"])  # our inline script ran under the page's CSP
    assert "PASS" in seen["text"] and "p95" in seen["text"]


@pytest.mark.slow
def test_comparison_report_colours_the_slower_endpoint(runs, tmp_path, cli_here):
    result = cli_here("compare", runs[0], runs[1], "--threshold", "GET /products/[id]: p95<20ms")
    assert result.code == 0, result.stderr
    html = Path(result.last_line)
    seen = _browse(html, tmp_path)
    assert any(h.startswith("Comparison with baseline") for h in seen["headings"])
    page = html.read_text()
    row = page[page.index("<td>GET /products/[id]</td>"):].split("</tr>")[0]
    assert 'class="worse"' in row  # p50/p95 went up by ~30 ms
    assert "FAIL" in seen["text"]


@pytest.mark.slow
def test_outside_strings_are_text_never_markup(tmp_path, cli_here):
    script = "<script>window.__pwned=1</script>"
    img = '<img src=x onerror="window.__pwned=2">'
    run_dir = make_run(tmp_path / "xss", {("GET", script): 5.0, ("POST", "/ok"): 3.0},
                       errors={("GET", script): f"HTTPError {img} token=abc123"}, tags={"who": img})
    result = cli_here("report", str(run_dir.path))
    assert result.code == 0, result.stderr
    seen = _browse(Path(result.last_line), tmp_path)
    assert seen["pwned"] == "undefined"
    assert script in seen["text"] and img in seen["text"]  # shown as text
    assert "abc123" not in seen["text"] and "[REDACTED]" in seen["text"]


@pytest.mark.slow
def test_partial_runs_render_with_notes(tmp_path, cli_here):
    plain = make_run(tmp_path / "plain", {("GET", "/a"): 4.0})
    interrupted = make_run(tmp_path / "cut", {("GET", "/a"): 4.0}, seconds=12, status="interrupted")
    empty = RunDir(tmp_path / "empty").create(RunInfo(id="empty", scenario="smoke", host="http://127.0.0.1:9",
                                                      status="failed", status_reason="no request succeeded (0 failed)"))
    texts = {}
    for run_dir in (plain, interrupted, empty):
        result = cli_here("report", str(run_dir.path))
        assert result.code == 0, result.stderr
        texts[run_dir.path.name] = Path(result.last_line).read_text()
    assert "No server metrics were collected" in texts["plain"] and "NO SLOs" in texts["plain"]
    # Analyses a plain run has not had: one line each under "Not analysed yet", not empty sections.
    assert all(f"<li><b>{title}</b>:" in texts["plain"] and f"<h2>{title}</h2>" not in texts["plain"] for title in NOT_YET)
    assert "INTERRUPTED" in texts["cut"]
    assert "No requests were recorded" in texts["empty"] and "FAILED RUN" in texts["empty"]
    seen = _browse(tmp_path / "empty" / "report.html", tmp_path)
    assert "Run metadata" in seen["headings"]


@pytest.mark.slow
def test_report_bad_input_is_one_line(tmp_path, cli_here):
    from conftest import assert_one_line_error

    missing = cli_here("report", str(tmp_path / "nope"))
    assert missing.code == 2
    assert_one_line_error(missing, "no such run directory")
    run_dir = make_run(tmp_path / "r", {("GET", "/a"): 4.0}, seconds=10)
    bad = cli_here("report", str(run_dir.path), "--threshold", "p95<<1ms")
    assert bad.code == 2
    assert_one_line_error(bad, "expected a number at position 5")
    (run_dir.path / "run.json").write_text("{oops")
    broken = cli_here("report", str(run_dir.path))
    assert broken.code == 2
    assert_one_line_error(broken, "run.json: malformed JSON")


@pytest.mark.slow
def test_demo_finds_the_shops_knee_and_ends_with_the_report(demo_run):
    """The demo's step-rate run (7 steps up to 1,400 arrivals/s, 4 s each here) goes past one shop
    worker's capacity: its capacity fit explains the steps (R² >= 0.9) and the knee falls between
    two measured steps, where the achieved rate fell behind the offered one or p95 jumped."""
    result = demo_run
    run_path = Path(result.last_line)
    assert (run_path / "report.html").exists() and (run_path / "metrics.csv").exists()
    assert f"report written to {run_path / 'report.html'}" in result.stderr
    capacity = json.loads((run_path / "summary.json").read_text())["capacity"]
    print("\n" + "\n".join(line for line in result.stderr.splitlines() if line.startswith("demo:")))
    print(*(f"step {p['step']}: offered {p['offered_rps']:.0f}, achieved {p['rps']:.0f} req/s, p95 {p['p95_ms']:.1f} ms"
            for p in capacity["points"]), sep="\n")
    assert capacity["concurrency_source"] == "littles_law_service" and len(capacity["points"]) == 7
    assert capacity["model"]["r_squared"] >= 0.9, capacity["model"]
    assert f"R² {capacity['model']['r_squared']:.3f}" in result.stderr
    knee = capacity["offered_knee"]
    assert knee is not None and knee["after_step"] is not None, capacity["points"]  # not at the first step, not beyond the last
    assert knee["offered_rps"][0] < knee["offered_rps"][1]
    page = (run_path / "report.html").read_text()
    assert "Open model: arrivals and latency from the intended start" in page and "offered req/s" in page
