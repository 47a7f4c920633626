"""The report's cache section: the miss-ratio curve and the chosen size, from
summary.json["cache"] (`loadwise advise cache RUN`)."""

from __future__ import annotations

from loadwise.reports import charts
from loadwise.reports.data import RunData
from loadwise.reports.sections import SectionContent, Table, register


def _chart(block: dict) -> str:
    sizes = [p["size"] for p in block["mrc"]]
    hits = [p["hit_ratio"] for p in block["mrc"]]
    chosen = block["recommended"]
    fig, ax = charts.plt.subplots(figsize=(9, 3.2))
    ax.plot(sizes, hits, color=charts.BLUE, label=f"LRU hit ratio ({block['method']})")
    ax.scatter([chosen["entries"]], [chosen["expected_hit_ratio"]], color=charts.RED, zorder=3,
               label=f"chosen: {chosen['entries']} entries, {chosen['expected_hit_ratio']:.0%}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("cache size (entries, log)")
    ax.set_ylabel("hit ratio")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Miss-ratio curve (as hit ratio)")
    return charts.to_uri(fig)


class CacheSection:
    id = "cache"
    title = "Cache"
    order = 116

    def build(self, run: RunData, baseline: RunData | None) -> SectionContent:
        block = run.summary.get("cache")
        if not isinstance(block, dict) or "mrc" not in block:
            return SectionContent(notes=["No cache advice yet: run with --cache-endpoint NAME, then `loadwise advise cache RUN`."],
                                  empty=True)  # fmt: skip
        r, effect = block["recommended"], block.get("expected_effect", {})
        rows = [["requests / distinct keys", f"{block['requests']} / {block['distinct_keys']}"],
                ["one-hit wonders", f"{block['one_hit_wonder_ratio']:.0%}"],
                ["reuse time p50 / p90", " / ".join(f"{block['reuse_time_s'].get(q, 0):g} s" for q in ("50", "90"))
                 if all(isinstance(k, str) for k in block.get("reuse_time_s", {})) else "–"],
                ["TTL range", f"{r['ttl_s'][0]:g}–{r['ttl_s'][1]:g} s"],
                ["backend requests/s", f"{effect.get('requests_per_s', 0):.1f} -> {effect.get('backend_requests_per_s', 0):.1f}"]]  # fmt: skip
        if "mean_latency_ms" in effect:
            rows.append(["mean latency", f"{effect['miss_latency_ms']:.1f} -> {effect['mean_latency_ms']:.1f} ms"])
        notes = list(block.get("notes", []))
        redis = block.get("redis")
        if redis:
            notes += [f"Redis: {a}" for a in redis.get("advice", [])]
        return SectionContent(
            headline=f"{r['entries']} entries ({r['chosen_by']}) for an expected {r['expected_hit_ratio']:.0%} hit ratio",
            charts=[("LRU miss-ratio curve with the chosen size", _chart(block))], tables=[Table(["figure", "value"], rows)],
            notes=notes,
        )  # fmt: skip


register(CacheSection())
