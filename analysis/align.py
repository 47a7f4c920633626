"""One time grid for the load and the server: client intervals joined with server metrics."""

from __future__ import annotations

import pandas as pd

from loadwise.analysis import histogram


CLIENT_COLUMNS = ["users", "requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms"]


def client_frame(intervals: pd.DataFrame, sparse: list[histogram.Sparse] | None = None) -> pd.DataFrame:
    """Per interval start, all endpoints together: users, requests, rps, failures, p50/p95/p99.

    `sparse`, the rows' histograms already decoded (histogram.sparse_counts), saves
    decoding them again.
    """
    if intervals.empty:
        return pd.DataFrame(columns=CLIENT_COLUMNS)
    if sparse is None:
        sparse = [histogram.sparse_counts(text) for text in intervals["hdr"]]
    positions = intervals.reset_index(drop=True).groupby("start", sort=True).indices
    rows = []
    for start, where in positions.items():
        group = intervals.iloc[where]
        interval_s = float(group["interval_s"].iloc[0])
        counts = histogram.merge_sparse([sparse[i] for i in where])
        p50, p95, p99 = histogram.percentiles_from_counts(counts, (50, 95, 99), float(group["max_ms"].max()))
        rows.append({
            "start": start,
            "users": pd.to_numeric(group["users"], errors="coerce").max(),
            "requests": int(group["requests"].sum()),
            "failures": int(group["failures"].sum()),
            "rps": group["requests"].sum() / interval_s,
            "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("start")


def metric_column(series: str, labels: str) -> str:
    return series if labels in ("", "{}") else f"{series}{labels}"


def preferred_source(metrics: pd.DataFrame) -> str | None:
    """The collector to read when a run has both: Prometheus, else the embedded scrape."""
    sources = set(metrics["source"]) if len(metrics) else set()
    return "prometheus" if "prometheus" in sources else ("scrape" if sources else None)


def align(
    intervals: pd.DataFrame, metrics: pd.DataFrame, source: str | None = None, sparse: list[histogram.Sparse] | None = None
) -> pd.DataFrame:
    """Client intervals (index: interval start, UTC) with one column per server series.

    A metric sample stamped T describes the interval before T (a rate over the
    preceding window, or a gauge read at T), so it goes to the interval holding
    T - interval/2: start = floor((T - interval/2) / interval) * interval. Several
    samples in one interval are averaged. `source` picks one collector when a run has both.
    """
    client = client_frame(intervals, sparse)
    if metrics is None or metrics.empty or intervals.empty:
        return client
    interval_s = float(intervals["interval_s"].iloc[0])
    chosen = metrics if source is None else metrics[metrics["source"] == source]
    if chosen.empty:
        return client
    seconds = chosen["timestamp"].map(pd.Timestamp.timestamp)
    starts = ((seconds - interval_s / 2) // interval_s) * interval_s
    server = chosen.assign(
        start=pd.to_datetime(starts, unit="s", utc=True),
        column=[metric_column(s, lb) for s, lb in zip(chosen["series"], chosen["labels"])],
    ).pivot_table(index="start", columns="column", values="value", aggfunc="mean")
    server.columns.name = None
    return client.join(server, how="left")
