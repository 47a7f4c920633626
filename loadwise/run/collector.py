"""The collector: the target's own metrics over the run's window, into `metrics.csv`.

Two sources, one table (see `analysis.metrics`):
- `Scraper` (the default): scrapes the target's `/metrics` every interval while the run
  goes, parses the text format with prometheus_client's parser;
- `collect_prometheus`: after the run, named PromQL range queries over [start, end] with
  prometheus-api-client, the run's interval as step.
Whatever cannot be had (Prometheus down, a query error, an empty result, a target that
disappears) is returned as a problem with its reason; it never stops the run.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from datetime import datetime, timezone
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from loadwise.analysis import metrics as m
from loadwise.analysis.redact import redact
from loadwise.config import KubernetesTarget, PrometheusSettings
from loadwise.errors import LoadwiseError

Problem = dict[str, str]


def _reason(exc: BaseException) -> str:
    text = redact(f"{type(exc).__name__}: {exc}")
    return text if len(text) <= 240 else text[:237] + "..."


# -- Prometheus --------------------------------------------------------------------------


def _selector(*matchers: str) -> str:
    # Always a brace, even empty (`name{}` is valid PromQL), so every metric name in a
    # query is followed by `{` and can be checked against real scrapes.
    return "{" + ",".join(x for x in matchers if x) + "}"


def default_queries(job: str | None, window: str) -> dict[str, str]:
    """The plain-service set; every name matches a series the embedded collector derives."""
    job_matcher = f'job="{job}"' if job else ""
    sel = _selector(job_matcher)
    errors = _selector(job_matcher, 'status=~"5.."')
    by_le = f"sum by (le) (rate({m.DURATION_BUCKET}{sel}[{window}]))"
    queries = {
        m.CPU: f"sum(rate({m.CPU_SECONDS}{sel}[{window}]))",
        m.MEMORY: f"sum({m.RESIDENT_MEMORY}{sel})",
        m.SERVER_RPS: f"sum(rate({m.REQUESTS}{sel}[{window}]))",
        m.SERVER_ERROR_RPS: f"sum(rate({m.REQUESTS}{errors}[{window}])) or vector(0)",
        m.IN_FLIGHT: f"sum({m.IN_PROGRESS}{sel})",
    }
    for name, q in m.SERVER_QUANTILES.items():
        queries[name] = f"1000 * histogram_quantile({q}, {by_le})"
    return queries


def kubernetes_queries(target: KubernetesTarget, window: str) -> dict[str, str]:
    """cAdvisor per-pod CPU and memory; kube-state-metrics replicas and HPA desired replicas."""
    pods = f'namespace="{target.namespace}",pod=~"{target.deployment}-.*",container!="",container!="POD"'
    return {
        "pod_cpu_cores": f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{pods}}}[{window}]))",
        "pod_memory_bytes": f"sum by (pod) (container_memory_working_set_bytes{{{pods}}})",
        "ready_replicas": f'sum(kube_deployment_status_replicas_ready{{namespace="{target.namespace}",deployment="{target.deployment}"}})',
        "hpa_desired_replicas": (
            f'sum(kube_horizontalpodautoscaler_status_desired_replicas{{namespace="{target.namespace}",'
            f'horizontalpodautoscaler="{target.deployment}"}})'
        ),
    }


def all_queries(settings: PrometheusSettings) -> dict[str, str]:
    queries = default_queries(settings.job, settings.rate_window)
    if settings.kubernetes:
        queries.update(kubernetes_queries(settings.kubernetes, settings.rate_window))
    queries.update(settings.queries)
    return queries


def _auth(settings: PrometheusSettings) -> tuple[dict[str, str] | None, tuple[str, str] | None]:
    def env(name: str) -> str:
        value = os.environ.get(name)
        if not value:
            raise LookupError(f"environment variable {name} is not set")
        return value

    headers = {"Authorization": f"Bearer {env(settings.bearer_token_env)}"} if settings.bearer_token_env else None
    auth = None
    if settings.basic_auth_user_env:
        auth = (env(settings.basic_auth_user_env), env(settings.basic_auth_password_env or ""))
    return headers, auth


def collect_prometheus(
    settings: PrometheusSettings, start: float, end: float, step_s: float
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Range-query every named expression; (tidy rows, problems)."""
    from prometheus_api_client import PrometheusConnect
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import Timeout
    from urllib3.util.retry import Retry

    queries = all_queries(settings)
    try:
        headers, auth = _auth(settings)
    except LookupError as exc:
        return [], [{"source": "prometheus", "series": "*", "reason": str(exc)}]
    wait = end + settings.settle_s - time.time()
    if wait > 0:
        time.sleep(wait)
    client = PrometheusConnect(
        url=settings.url.rstrip("/"), headers=headers, auth=auth, timeout=settings.timeout_s,
        retry=Retry(total=1, backoff_factor=0.2, status_forcelist=()),
    )  # fmt: skip
    # Align the query grid with the recorder's intervals.
    grid_start = datetime.fromtimestamp((start // step_s) * step_s, timezone.utc)
    grid_end = datetime.fromtimestamp(end, timezone.utc)
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    unreachable: str | None = None
    for series, query in queries.items():
        if unreachable:
            problems.append({"source": "prometheus", "series": series, "reason": unreachable})
            continue
        try:
            result = client.custom_query_range(query, grid_start, grid_end, step=f"{step_s:g}")
        except (RequestsConnectionError, Timeout) as exc:
            unreachable = f"Prometheus unreachable: {_reason(exc)}"
            problems.append({"source": "prometheus", "series": series, "reason": unreachable})
            continue
        except Exception as exc:  # HTTP errors, bad PromQL, malformed answers
            problems.append({"source": "prometheus", "series": series, "reason": _reason(exc)})
            continue
        found = m.from_prometheus(series, result)
        if not found:
            problems.append({"source": "prometheus", "series": series, "reason": "empty result"})
        rows += found
    client.close()
    return rows, problems


# -- the embedded scraper -----------------------------------------------------------------


MAX_SCRAPE_BYTES = 8 * 2**20  # a /metrics body beyond this is refused, not parsed
MAX_KEPT_SAMPLES = 20_000  # of the names the collector uses (label values are the target's to explode)


class ScrapeRefused(LoadwiseError):
    """A scrape that exceeded its deadline or its size bound (the target's doing, not a bug)."""


def parse_exposition(text: str, at: float, keep: frozenset[str] | None = m.SCRAPED_NAMES) -> m.Snapshot:
    """The samples of one scrape whose names the collector uses (all of them with keep=None)."""
    samples: dict[tuple[str, m.Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if keep is not None and sample.name not in keep:
                continue
            if len(samples) >= MAX_KEPT_SAMPLES:
                raise ScrapeRefused(f"more than {MAX_KEPT_SAMPLES} samples of the collected metrics in one scrape")
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return m.Snapshot(at, samples)


def fetch_bounded(url: str, timeout_s: float, max_bytes: int = MAX_SCRAPE_BYTES) -> str:
    """GET `url`, giving up once `timeout_s` has passed in total. urlopen's timeout is per
    socket read, so a body that drips a byte a second would hold a scrape (and the run's
    end) for as long as it likes; checking the deadline between reads bounds a scrape by
    twice `timeout_s` whatever the target does."""
    deadline = time.monotonic() + timeout_s
    body = bytearray()
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        while True:
            if time.monotonic() > deadline:
                raise ScrapeRefused(f"the scrape took longer than {timeout_s:g}s")
            chunk = response.read1(65536)
            if not chunk:
                break
            body += chunk
            if len(body) > max_bytes:
                raise ScrapeRefused(f"the /metrics body is larger than {max_bytes // 2**20} MiB")
    return body.decode("utf-8", errors="replace")


class Scraper:
    """Scrapes each URL every `interval_s` seconds in a background thread until `stop()`."""

    def __init__(self, urls: list[str], interval_s: float, timeout_s: float = 3.0):
        self.urls = list(urls)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.snapshots: dict[str, list[m.Snapshot]] = {url: [] for url in self.urls}
        self.failures: dict[str, tuple[int, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loadwise-scraper", daemon=True)

    def start(self) -> Scraper:
        self._thread.start()
        return self

    def scrape_once(self) -> None:
        for url in self.urls:
            try:
                text = fetch_bounded(url, self.timeout_s)
                self.snapshots[url].append(parse_exposition(text, time.time()))
            except Exception as exc:  # a target that went away: count it, keep going
                count, _ = self.failures.get(url, (0, ""))
                self.failures[url] = (count + 1, _reason(exc))

    def _loop(self) -> None:
        # Scrape just after each wall-clock interval boundary, the recorder's grid.
        self.scrape_once()
        while not self._stop.is_set():
            now = time.time()
            next_at = (now // self.interval_s + 1) * self.interval_s + 0.05
            if self._stop.wait(next_at - now):
                break
            self.scrape_once()

    def stop(self) -> None:
        """Stop after one last scrape, so the run's final seconds are covered."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=self.timeout_s * len(self.urls) + 5)
            self.scrape_once()

    def results(self) -> tuple[list[dict[str, Any]], list[Problem]]:
        rows: list[dict[str, Any]] = []
        problems: list[Problem] = []
        for url, snaps in self.snapshots.items():
            derived = m.derive(snaps)
            if len(self.urls) > 1:
                for row in derived:
                    row["labels"] = m.labels_json({"instance": url})
            rows += derived
            if url in self.failures:
                count, reason = self.failures[url]
                problems.append({"source": "scrape", "series": "*", "target": url,
                                 "reason": f"{count} scrape(s) failed; last: {reason}"})  # fmt: skip
            if len(snaps) >= 2 and not derived:
                problems.append({"source": "scrape", "series": "*", "target": url,
                                 "reason": "no known metric names (process_*, http_requests_*) in the scrape"})  # fmt: skip
        return rows, problems
