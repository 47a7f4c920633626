"""Reading the CSVs people bring (access logs, request-rate exports): a timestamp column
in epoch seconds or ISO 8601, plus the columns a caller needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from loadwise.errors import LoadwiseError


class CsvInputError(LoadwiseError, ValueError):
    """The file is missing, not CSV, or lacks a column; the message names the file."""


def read_timestamped(path: Path, columns: tuple[str, ...], needs: str, **read_csv: Any) -> pd.DataFrame:
    """The CSV at `path` with `timestamp` as float epoch seconds (NaN where unreadable).
    `needs` says which columns the caller wants, for the message when some are missing."""
    if not path.is_file():
        raise CsvInputError(f"{path}: no such trace file")
    try:
        frame = pd.read_csv(path, **read_csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CsvInputError(f"{path}: malformed CSV ({exc})") from None
    if not {"timestamp", *columns} <= set(frame.columns):
        raise CsvInputError(f"{path}: needs {needs}")
    stamps = pd.to_numeric(frame["timestamp"], errors="coerce")
    if stamps.isna().any():
        stamps = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce").map(
            lambda t: t.timestamp() if pd.notna(t) else np.nan
        )
    return frame.assign(timestamp=stamps.astype(float))
