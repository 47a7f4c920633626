"""Charts as self-contained SVG data URIs (matplotlib, text kept as text)."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from loadwise.analysis import histogram  # noqa: E402
from loadwise.analysis.steps import has_offered_rates  # noqa: E402

plt.rcParams.update({
    "svg.fonttype": "none", "font.family": "sans-serif", "font.size": 9, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.color": "#e5e7eb", "grid.linewidth": 0.6,
    "axes.edgecolor": "#9ca3af", "axes.titlesize": 10, "axes.titleweight": "bold", "legend.frameon": False,
    "svg.hashsalt": "loadwise",
})  # fmt: skip

BLUE, ORANGE, RED, GREEN, GREY, PURPLE = "#2563eb", "#f59e0b", "#dc2626", "#16a34a", "#6b7280", "#7c3aed"
PALETTE = [BLUE, ORANGE, GREEN, RED, PURPLE, "#0891b2", "#db2777", "#65a30d", GREY]


def to_uri(fig: plt.Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue().encode("utf-8")).decode("ascii")


def right_axis(ax: plt.Axes, label: str) -> plt.Axes:
    """A second y axis on the right, for a series in other units."""
    twin = ax.twinx()
    twin.set_ylabel(label)
    twin.grid(False)
    twin.spines["right"].set_visible(True)
    return twin


def legend_two_axes(ax: plt.Axes, twin: plt.Axes, **legend: object) -> None:
    """One legend for the lines of both axes; both start at zero."""
    twin.set_ylim(bottom=0)
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], **legend)


def _elapsed_axis(ax: plt.Axes) -> None:
    def minutes(seconds: float, _: object) -> str:
        sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
        return f"{sign}{int(seconds // 60)}:{int(seconds % 60):02d}"

    ax.xaxis.set_major_formatter(FuncFormatter(minutes))
    ax.set_xlabel("elapsed (min:s)")


def load_chart(timeline: pd.DataFrame) -> str:
    """Users, requests/s and failures/s on one time axis."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    x = timeline.index
    ax.plot(x, timeline["rps"], color=BLUE, label="requests/s", linewidth=1.6)
    failures = timeline["failures"] / (timeline["requests"] / timeline["rps"]).replace(0, np.nan)
    ax.plot(x, failures.fillna(0), color=RED, label="failures/s", linewidth=1.2)
    ax.set_ylabel("per second")
    ax.set_ylim(bottom=0)
    users = right_axis(ax, "users")
    users.step(x, timeline["users"], where="post", color=GREY, linestyle="--", linewidth=1.2, label="users")
    legend_two_axes(ax, users, loc="upper left", ncol=3)
    _elapsed_axis(ax)
    ax.set_title("Load: users, throughput and failures")
    return to_uri(fig)


def latency_chart(timeline: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for column, label, color in (("p50_ms", "p50", GREEN), ("p95_ms", "p95", ORANGE), ("p99_ms", "p99", RED)):
        ax.plot(timeline.index, timeline[column], color=color, label=label, linewidth=1.4)
    ax.set_ylabel("ms")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", ncol=3)
    _elapsed_axis(ax)
    ax.set_title("Response time percentiles, all endpoints (client side)")
    return to_uri(fig)


_NINES = np.array([0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999])


def distribution_chart(curves: dict[str, np.ndarray], top: int = 8) -> str:
    """Percentile spectrum (HdrHistogram style): latency at each percentile, both axes log."""
    fig, ax = plt.subplots(figsize=(9, 3.6))
    qs = 100.0 * (1 - np.logspace(0, -5, 200))
    for n, (label, counts) in enumerate(list(curves.items())[: top + 1]):
        total = counts.sum()
        if total == 0:
            continue
        usable = qs[qs <= 100.0 * (1 - 1.0 / total)] if total > 1 else qs[:1]
        values = histogram.percentiles_from_counts(counts, usable)
        x = 1.0 / (1.0 - usable / 100.0)
        ax.plot(x, values, label=label, color=PALETTE[n % len(PALETTE)], linewidth=2.0 if n == 0 else 1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = 1.0 / (1.0 - _NINES / 100.0)
    ax.set_xticks(ticks, [f"{q:g}%" for q in _NINES])
    ax.set_xlabel("percentile")
    ax.set_ylabel("ms (log)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Latency distribution (from the merged HDR histograms)")
    return to_uri(fig)


SERVER_PANELS = [
    ("cpu_cores", "CPU (cores)", None),
    ("memory_bytes", "Resident memory (MB)", None),
    ("server_rps", "Requests/s: server vs client", "rps"),
    ("server_p95_ms", "p95 ms: server vs client", "p95_ms"),
    ("in_flight", "Requests in flight", None),
    ("ready_replicas", "Ready replicas", None),
]


def server_chart(timeline: pd.DataFrame) -> str | None:
    panels = [p for p in SERVER_PANELS if p[0] in timeline.columns and timeline[p[0]].notna().any()]
    if not panels:
        return None
    cols = 2
    rows = (len(panels) + 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(9, 2.4 * rows), squeeze=False, sharex=True)
    for ax, (column, title, client) in zip(axes.flat, panels):
        values = timeline[column] / 1e6 if column == "memory_bytes" else timeline[column]
        ax.plot(timeline.index, values, color=PURPLE, linewidth=1.4, label="server")
        if client:
            ax.plot(timeline.index, timeline[client], color=BLUE, linewidth=1.0, linestyle="--", label="client")
            ax.legend(loc="upper left", fontsize=8)
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        _elapsed_axis(ax)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return to_uri(fig)


def step_chart(steps: pd.DataFrame) -> str:
    """Throughput and p95 per steady step: against users, or (step-rate) against the rate offered."""
    fig, ax = plt.subplots(figsize=(9, 3.0))
    open_model = has_offered_rates(steps)
    x = steps["offered_rps"] if open_model else steps["users"]
    ax.plot(x, steps["rps"], marker="o", color=BLUE, label="achieved requests/s" if open_model else "requests/s")
    if open_model:
        ax.plot(x, x, color=GREY, linestyle=":", label="offered (achieved = offered)")
    ax.set_xlabel("offered requests/s" if open_model else "users")
    ax.set_ylabel("requests/s")
    ax.set_ylim(bottom=0)
    lat = right_axis(ax, "p95 ms")
    lat.plot(x, steps["p95_ms"], marker="s", color=ORANGE, label="p95 ms (from the intended start)" if open_model else "p95 ms")
    legend_two_axes(ax, lat, loc="upper left")
    ax.set_title("Steady state per step: achieved against offered rate, and p95" if open_model else
                 "Steady state per step: throughput and p95 against users")  # fmt: skip
    return to_uri(fig)


def compare_chart(a: pd.DataFrame, b: pd.DataFrame, label_a: str, label_b: str) -> str:
    """Requests/s and p95 of two runs on one elapsed-time axis."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    for frame, label, color in ((a, label_a, GREY), (b, label_b, BLUE)):
        top.plot(frame.index, frame["rps"], color=color, label=label, linewidth=1.4)
        bottom.plot(frame.index, frame["p95_ms"], color=color, label=label, linewidth=1.4)
    top.set_ylabel("requests/s")
    top.set_title("Throughput")
    bottom.set_ylabel("p95 ms")
    bottom.set_title("p95 response time")
    for ax in (top, bottom):
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left")
    _elapsed_axis(bottom)
    fig.tight_layout()
    return to_uri(fig)
