"""The collector against a real Prometheus (Debian's binary) scraping the real demo target
and the Locust exporter, beside the embedded scraper on the same run."""

import json
import re
from collections.abc import Iterator

import pytest
import yaml
from conftest import REPO, run_cli
from services import Prometheus

from loadwise.analysis.align import align
from loadwise.analysis.rundir import RunDir
from loadwise.run.collector import default_queries
from loadwise.run.net import free_port

USERS = 10


@pytest.fixture(scope="module")
def prom_run(target, tmp_path_factory) -> Iterator[tuple[RunDir, Prometheus]]:
    """One run collected both ways, with the shipped scrape config pointed at this test's ports."""
    exporter_port = free_port()
    shipped = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in shipped["scrape_configs"]}
    jobs["shop"]["static_configs"] = [{"targets": [f"127.0.0.1:{target.port}"]}]
    jobs["loadwise"]["static_configs"] = [{"targets": [f"127.0.0.1:{exporter_port}"]}]
    prometheus = Prometheus(list(jobs.values())).start()
    # Scraping the shop already (Prometheus sends its first targets ~5 s after it starts): two samples
    # now and two more during `loadwise run`'s start-up are what rate()'s 4 s window needs at the
    # run's first interval (and the first is not among the steady ones compared below).
    prometheus.wait_for('count_over_time(up{job="shop"}[1m]) >= 2')
    work = tmp_path_factory.mktemp("prom")
    (work / "loadwise.toml").write_text(
        '[profiles.test.prometheus]\njob = "shop"\nrate_window = "4s"\nsettle = "2s"\ntimeout = "5s"\n'
        '[profiles.test.prometheus.queries]\nnothing = "sum(no_such_metric{})"\n'
    )
    try:
        result = run_cli("run", "browse", "--host", target.url, "--profile", "test", "--users", str(USERS),
                         "--spawn-rate", str(USERS), "--duration", "12s", "--interval", "2",
                         "--prometheus", prometheus.url, "--scrape", f"{target.url}/metrics",
                         "--exporter-port", str(exporter_port), "--out", str(work), cwd=work)
        assert result.code == 0, result.stderr
        yield RunDir(result.last_line), prometheus
    finally:
        prometheus.stop()


def _steady(frame):
    """Intervals at full load, without the first and last (ramp, stop): 4 of a 12 s run's 6."""
    full = frame[frame["users"] == USERS]
    return full.iloc[1:-1]


@pytest.mark.slow
def test_prometheus_cpu_and_request_rate_agree_with_the_load(prom_run):
    run_dir, _ = prom_run
    info = run_dir.read_info()
    assert info.collector["sources"] == ["scrape", "prometheus"]
    assert info.collector["missing"] == [{"source": "prometheus", "series": "nothing", "reason": "empty result"}]
    frame = _steady(align(run_dir.read_intervals(), run_dir.read_metrics(), source="prometheus"))
    assert len(frame) >= 3
    assert (frame["cpu_cores"] > 0).all()
    ratio = frame["server_rps"].mean() / frame["rps"].mean()
    assert abs(ratio - 1) < 0.10, (frame[["rps", "server_rps"]], ratio)


@pytest.mark.slow
def test_embedded_scraper_gives_the_same_series_and_agrees_with_prometheus(prom_run):
    run_dir, _ = prom_run
    metrics = run_dir.read_metrics()
    by_source = {src: set(group["series"]) for src, group in metrics.groupby("source")}
    assert by_source["scrape"] == by_source["prometheus"] == set(default_queries(None, "1m"))
    intervals = run_dir.read_intervals()
    scraped = _steady(align(intervals, metrics, source="scrape"))
    queried = _steady(align(intervals, metrics, source="prometheus"))
    for series in ("server_rps", "memory_bytes"):
        a, b = scraped[series].mean(), queried[series].mean()
        assert abs(a / b - 1) < 0.10, (series, a, b)
    assert abs(scraped["rps"].mean() / scraped["server_rps"].mean() - 1) < 0.10


@pytest.mark.slow
def test_exporter_counters_reached_prometheus(prom_run):
    run_dir, prometheus = prom_run
    recorded = int(run_dir.read_intervals()["requests"].sum())
    reached = prometheus.query('max_over_time(sum(locust_requests_total{job="loadwise"})[2m:1s])')
    assert reached and 0.5 * recorded < float(reached[0]["value"][1]) <= recorded
    users = prometheus.query('max_over_time(sum(locust_users{job="loadwise"})[2m:1s])')
    assert float(users[0]["value"][1]) == USERS
    buckets = prometheus.query('max_over_time(sum(locust_response_time_seconds_count{job="loadwise"})[2m:1s])')
    assert float(buckets[0]["value"][1]) > 0


def _dashboard_queries() -> list[str]:
    dashboard = json.loads((REPO / "deploy/grafana/loadwise.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


@pytest.mark.slow
def test_every_dashboard_and_default_query_names_metrics_prometheus_really_scraped(prom_run):
    _, prometheus = prom_run
    scraped = prometheus.metric_names()  # what the real scrapes of the target and exporter held
    queries = _dashboard_queries() + list(default_queries("shop", "4s").values())
    assert len(queries) > 12
    for expr in queries:
        names = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr))
        assert names, expr
        assert names <= scraped, (expr, names - scraped)
        concrete = expr.replace("$__rate_interval", "4s").replace("$loadwise_job", "loadwise").replace("$job", "shop")
        wrapped = f"max_over_time(({concrete})[2m:1s])"
        assert prometheus.query(wrapped), f"no data for {expr}"


def test_shipped_scrape_config_is_valid_for_promtool():
    from services import promtool

    proc = promtool("check", "config", str(REPO / "deploy/prometheus/prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dashboard_is_grafana_json_with_the_panels_a_run_needs():
    dashboard = json.loads((REPO / "deploy/grafana/loadwise.json").read_text())
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for word in ("users", "requests/s", "failures", "p95", "cpu", "memory"):
        assert word in titles
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "job", "loadwise_job"}
