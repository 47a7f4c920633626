"""Reading published benchmark data: a CSV with concurrency `N` and throughput `X`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from loadwise.capacity.models import CapacityError


def read_points(path: Path) -> tuple[list[float], list[float]]:
    if not path.is_file():
        raise CapacityError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise CapacityError(f"{path}: malformed CSV ({exc})") from exc
    columns = {c.strip().lower(): c for c in frame.columns}
    if "n" not in columns or "x" not in columns:
        raise CapacityError(f"{path}: needs columns N (concurrency) and X (throughput); found {', '.join(frame.columns)}")
    n = pd.to_numeric(frame[columns["n"]], errors="coerce")
    x = pd.to_numeric(frame[columns["x"]], errors="coerce")
    return n.tolist(), x.tolist()
