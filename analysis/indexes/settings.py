"""The settings of `loadwise advise db`, each default declared once (light: read by every --help)."""

from __future__ import annotations

from dataclasses import dataclass

from loadwise.settings import option


@dataclass
class IndexAdvisorSettings:
    """`loadwise advise db` options."""

    top: int = option(50, "statements to consider, by total time", parse="count", metavar="N")
    min_cut: float = option(0.5, "keep an index that cuts a statement's planner cost by at least this", parse="fraction",
                            metavar="PCT")
    max_indexes: int = option(10, "at most this many recommendations", parse="count", metavar="N")
    min_stats_age: float = option(7 * 86400.0, "advise dropping an unused index only when the usage statistics are at "
                                  "least this old (a reset makes every index look unused)", parse="duration",
                                  metavar="AGE", shown="7d")  # fmt: skip
    statement_timeout_ms: int = 5000  # each EXPLAIN and HypoPG call, set in the advisor's own transaction
