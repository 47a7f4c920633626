"""The run directory: the one place that knows its file names and formats.

`runs/<run_id>/` holds `run.json`, `intervals.csv`, `errors.csv`, `exceptions.csv`,
`metrics.csv`, `summary.json`, `report.html` and `locust.log`; open-model runs add
`iterations.csv`, key-sampled runs `keys.csv`, runs with a database `db_statements.json`
(docs/architecture.md has every column and key). Tables are CSV so that closed intervals can be
appended while the run is going and an interrupted run stays readable; each loads with
one `pandas.read_csv` call. JSON files are replaced atomically (write, then rename) so a
reader never sees half a file.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import re
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadwise.settings import DEFAULT_INTERVAL_S
from loadwise.errors import LoadwiseError

if TYPE_CHECKING:  # pandas is imported where a table is read: Locust processes write rows, not frames
    import pandas as pd

RUN_JSON = "run.json"
INTERVALS_CSV = "intervals.csv"
ERRORS_CSV = "errors.csv"
EXCEPTIONS_CSV = "exceptions.csv"
METRICS_CSV = "metrics.csv"
SUMMARY_JSON = "summary.json"
REPORT_HTML = "report.html"
LOCUST_LOG = "locust.log"
DB_STATEMENTS_JSON = "db_statements.json"
KEYS_CSV = "keys.csv"
ITERATIONS_CSV = "iterations.csv"  # open-model runs only
SCENARIOS_JSON = "scenarios.json"  # runs of several scenarios: the plan every Locust process read

STATUS_RUNNING = "running"
STATUS_COMPLETED = "completed"
STATUS_INTERRUPTED = "interrupted"
STATUS_FAILED = "failed"
STATUSES = (STATUS_RUNNING, STATUS_COMPLETED, STATUS_INTERRUPTED, STATUS_FAILED)

INTERVAL_COLUMNS = [
    "start", "interval_s", "method", "name", "requests", "failures", "users",
    "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "bytes", "hdr", "service_hdr", "scenario", "scenario_users",
]  # fmt: skip
# Under a rate shape (open model) `hdr` and the latency columns measure from each request's
# intended start and `service_hdr` holds the service times; closed-model runs leave it empty.
# In a run of several scenarios (`--scenarios`) each row is one scenario's: `scenario` names it and
# `scenario_users` are its own mean active users (`users` stays the whole run's); empty otherwise.
OPTIONAL_INTERVAL_COLUMNS = ("service_hdr", "scenario", "scenario_users")  # absent from runs recorded before they existed
ITERATION_COLUMNS = ["start", "interval_s", "scheduled", "started", "late", "dropped", "generator_late",
                     "lateness_mean_ms", "lateness_max_ms", "scenario"]  # fmt: skip
ERROR_COLUMNS = ["method", "name", "error", "count"]
EXCEPTION_COLUMNS = ["count", "message", "traceback", "nodes"]  # task exceptions, grouped as Locust groups them
METRIC_COLUMNS = ["timestamp", "source", "series", "labels", "value"]

_RUN_ID_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


_INFO_TYPES = (  # run.json fields whose type readers rely on
    ("shape", str, "a string"), ("shape_params", dict, "an object"), ("tags", dict, "an object"),
    ("workers", int, "a whole number"), ("worker_requests", dict, "an object"), ("interval_s", (int, float), "a number"),
    ("status", str, "a string"), ("status_reason", str, "a string"), ("collector", dict, "an object"),
    ("key_sample", dict, "an object"), ("grouped_names", dict, "an object"), ("target_commit", str, "a string"),
    ("locust", dict, "an object"), ("open_model", dict, "an object"), ("lost_workers", list, "a list"),
    ("load_ended_at", str, "a string"),
)  # fmt: skip
_SUMMARY_NUMBERS = ("requests", "failures", "rps", "error_rate", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")


class RunDirWarning(UserWarning):
    """Something in a run directory was damaged and left out; the rest was read (the CLI prints it as a note)."""


class RunDirError(LoadwiseError):
    """A run directory is missing or one of its files is malformed."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso_utc(moment: datetime | float) -> str:
    """UTC ISO 8601, to the millisecond when the moment has a fraction of a second: a run's
    start and end so, its rate is over its true duration (a 15 s run is not 16 s)."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    moment = moment.astimezone(timezone.utc)
    millis = moment.microsecond // 1000
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{millis:03d}Z" if millis else "Z")


def epoch_of(iso: str) -> float:
    """Seconds since the epoch of an ISO 8601 time as run.json writes it (iso_utc's inverse)."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def make_run_id(scenario: str, moment: datetime | None = None) -> str:
    """`YYYYMMDDTHHMMSSZ-<scenario>`; a scenario given as a path contributes its stem."""
    stem = Path(scenario).stem if scenario.endswith(".py") else scenario
    stamp = (moment or utc_now()).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{_RUN_ID_SAFE.sub('_', stem) or 'run'}"


def _decodes(hdr: Any) -> bool:
    """Whether a stored histogram decodes, as the readers decode it."""
    from loadwise.analysis import histogram

    try:
        histogram.sparse_counts(str(hdr))
        return True
    except histogram.HistogramError:
        return False


def new_run_path(runs_dir: Path, scenario: str) -> Path:
    """A new, empty run directory under `runs_dir`, created atomically: runs started in the
    same second (several `loadwise run`, or tests started from one web UI) get -2, -3 ..."""
    base = Path(runs_dir) / make_run_id(scenario)
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()  # fails if another run made it first: no check-then-create race
            return path
        except FileExistsError:
            continue
    raise RunDirError(f"{runs_dir}: 999 runs of {scenario} started in the same second")


@dataclass
class RunInfo:
    """What `run.json` holds."""

    id: str
    scenario: str
    host: str
    shape: str | None = None
    shape_params: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    ended_at: str | None = None
    # When the load stopped: the run's duration (and so its rates) is started_at..load_ended_at;
    # ended_at also counts the master's wait for the workers' last reports and the files' writing.
    load_ended_at: str | None = None
    workers: int = 0
    worker_requests: dict[str, int] = field(default_factory=dict)  # distributed: requests each worker sent
    interval_s: float = DEFAULT_INTERVAL_S
    locust_version: str = ""
    loadwise_version: str = ""
    target_commit: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status: str = STATUS_RUNNING
    status_reason: str | None = None
    collector: dict[str, Any] = field(default_factory=dict)  # sources, series collected, what could not be had
    key_sample: dict[str, Any] = field(default_factory=dict)  # cacheable endpoints' sampled keys: endpoints, rate
    grouped_names: dict[str, Any] = field(default_factory=dict)  # endpoint names beyond the recorder's bound, if any
    # What shaped the run on Locust's side: its command line, tag filters, config files and
    # LOCUST_* variables it read, and the User classes with their weights.
    locust: dict[str, Any] = field(default_factory=dict)
    # Open model: iteration totals, the lateness bound, and whether the load generator itself
    # could not keep up (`generator.saturated` with its evidence), so nobody reads a generator
    # limit as the target's.
    open_model: dict[str, Any] = field(default_factory=dict)
    # Distributed: workers the master lost (no heartbeat) before the end, each with `id`, `lost_at`,
    # `last_report_at` and the `requests` it had reported: those are in the run, what it sent after is not.
    lost_workers: list[dict[str, Any]] = field(default_factory=list)
    # An --abort-on threshold that stopped the run: `threshold`, `statistic`, `actual`, `limit`, the
    # window (`window_start`, `window_end`) it was judged over and `elapsed_s` at its end.
    aborted: dict[str, Any] = field(default_factory=dict)
    # loadwise.check()'s counts: `method`, `name` (the endpoint), `check`, `passes`, `fails`.
    checks: list[dict[str, Any]] = field(default_factory=list)
    # A run of several scenarios (`--scenarios`): each one's plan (`name`, `locustfile`, `classes`,
    # `shape`, `params`, `start_s`, `tags`) and what it ran (`classes` with their pools, `open_model`).
    scenarios: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunInfo:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def scenario_of_rows(frame: pd.DataFrame) -> pd.Series:
    """Each row's scenario as text ('' in a run of one, or a run from before scenarios)."""
    column = frame["scenario"].astype(object)
    return column.where(column.notna(), "").astype(str)


def json_safe(value: Any) -> Any:
    """`value` with NaN and infinities as None, so it is valid JSON."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:  # the text's own line ends, as written
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk leaves the old file whole and no half-written copy
        raise


def _csv_text(rows: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


class RunDir:
    """Reads and writes one run directory."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- writing -------------------------------------------------------------------

    def create(self, info: RunInfo) -> RunDir:
        """run.json, and every table with its header, so a run with no rows yet still has each file."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_info(info)
        for name, columns in ((INTERVALS_CSV, INTERVAL_COLUMNS), (ERRORS_CSV, ERROR_COLUMNS), (EXCEPTIONS_CSV, EXCEPTION_COLUMNS),
                              (METRICS_CSV, METRIC_COLUMNS)):  # fmt: skip
            if not (self.path / name).exists():
                _write_atomic(self.path / name, _csv_text([columns]))
        return self

    def file(self, name: str) -> Path:
        """The path of one of the run directory's files (names only through this module's constants)."""
        return self.path / name

    def has_summary(self) -> bool:
        return (self.path / SUMMARY_JSON).exists()

    def has_report(self) -> bool:
        return (self.path / REPORT_HTML).exists()

    def has_statements(self) -> bool:
        return (self.path / DB_STATEMENTS_JSON).exists()

    def write_info(self, info: RunInfo, in_place_if_full: bool = False) -> None:
        """run.json, atomically. On a full disk, `in_place_if_full` rewrites it within the
        blocks it already holds (run.json barely changes size), so the run's true status
        still lands; otherwise OSError."""
        if info.status not in STATUSES:
            raise ValueError(f"unknown run status {info.status!r}")
        text = json.dumps(asdict(info), indent=2) + "\n"
        try:
            _write_atomic(self.path / RUN_JSON, text)
        except OSError as exc:
            target = self.path / RUN_JSON
            held = target.stat().st_blocks * 512 if target.exists() else 0
            if not (in_place_if_full and exc.errno == errno.ENOSPC and len(text.encode()) <= held):
                raise
            with open(target, "r+", encoding="utf-8") as handle:
                handle.write(text)
                handle.truncate()
                handle.flush()
                os.fsync(handle.fileno())

    def append_intervals(self, rows: list[dict[str, Any]]) -> None:
        """Append closed intervals; the header is written with the first rows."""
        self._append_rows(INTERVALS_CSV, INTERVAL_COLUMNS, rows)

    def append_iterations(self, rows: list[dict[str, Any]]) -> None:
        """Append closed intervals' open-model iteration counts (the file appears with the first rows)."""
        self._append_rows(ITERATIONS_CSV, ITERATION_COLUMNS, rows)

    def _append_rows(self, name: str, columns: list[str], rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        target = self.path / name
        new_file = not target.exists() or target.stat().st_size == 0
        with open(target, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())

    def write_errors(self, rows: list[dict[str, Any]]) -> None:
        _write_atomic(self.path / ERRORS_CSV, _csv_text([ERROR_COLUMNS, *([row[c] for c in ERROR_COLUMNS] for row in rows)]))

    def write_metrics(self, metrics: pd.DataFrame) -> None:
        """Replace `metrics.csv` (timestamps as UTC ISO 8601 with milliseconds)."""
        out = metrics[METRIC_COLUMNS].copy()
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").str.replace(r"\d{3}Z$", "Z", regex=True)
        _write_atomic(self.path / METRICS_CSV, out.to_csv(index=False))

    def write_key_sample(self, entries: list[tuple[float, str]]) -> None:
        _write_atomic(self.path / KEYS_CSV, _csv_text([["timestamp", "key"], *((f"{t:.3f}", k) for t, k in entries)]))

    def write_json(self, name: str, data: Any) -> None:
        _write_atomic(self.path / name, json.dumps(json_safe(data), indent=2) + "\n")

    def read_json(self, name: str) -> Any:
        return self._read_json(name)

    def write_summary(self, summary: dict[str, Any]) -> None:
        _write_atomic(self.path / SUMMARY_JSON, json.dumps(json_safe(summary), indent=2, allow_nan=False) + "\n")

    # -- reading -------------------------------------------------------------------

    def read_info(self) -> RunInfo:
        data = self._read_json(RUN_JSON)
        where = self.path / RUN_JSON
        missing = [k for k in ("id", "scenario", "host") if not isinstance(data, dict) or not isinstance(data.get(k), str)]
        if missing:
            raise RunDirError(f"{where}: not a loadwise run.json (no {', '.join(missing)})")
        for key in ("started_at", "ended_at", "load_ended_at"):
            if data.get(key) is not None:
                try:
                    epoch_of(str(data[key]))
                except ValueError:
                    raise RunDirError(f"{where}: {key} {data[key]!r} is not an ISO 8601 time") from None
        for key, kinds, what in _INFO_TYPES:
            if key in data and data[key] is not None and (not isinstance(data[key], kinds) or isinstance(data[key], bool)):
                raise RunDirError(f"{where}: {key} must be {what} (got {data[key]!r})")
        if data.get("status", STATUS_RUNNING) not in STATUSES:
            raise RunDirError(f"{where}: status {data['status']!r} is not one of {', '.join(STATUSES)}")
        if isinstance(data.get("interval_s"), (int, float)) and not data["interval_s"] > 0:
            raise RunDirError(f"{where}: interval_s must be positive")
        return RunInfo.from_dict(data)

    def read_summary(self) -> dict[str, Any]:
        data = self._read_json(SUMMARY_JSON)
        where = self.path / SUMMARY_JSON
        if not isinstance(data, dict) or not isinstance(data.get("overall", {}), dict) or not isinstance(data.get("endpoints", []), list):
            raise RunDirError(f"{where}: not a loadwise summary (overall and endpoints)")
        for i, entry in enumerate([data.get("overall", {}), *data.get("endpoints", [])]):
            label = "overall" if i == 0 else f"endpoints[{i - 1}]"
            if not isinstance(entry, dict):
                raise RunDirError(f"{where}: {label} must be an object")
            for key in _SUMMARY_NUMBERS:
                value = entry.get(key)
                if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                    raise RunDirError(f"{where}: {label}.{key} must be a number (got {value!r})")
            if i and not (isinstance(entry.get("method"), str) and isinstance(entry.get("name"), str)):
                raise RunDirError(f"{where}: {label} needs a method and a name")
        return data

    def read_intervals(self) -> pd.DataFrame:
        """One row per (interval start, endpoint); `start` as UTC timestamps.

        Rows are appended as intervals close, so a killed process or a full disk can leave a
        torn row: damaged rows (missing fields, a cut histogram) are left out with a
        RunDirWarning naming their lines, and the whole rows are read."""
        return self._read_table(INTERVALS_CSV, INTERVAL_COLUMNS, time_column="start", numeric=(
            "interval_s", "requests", "failures", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "bytes"),
            drop_damaged=("start", "interval_s", "requests", "failures", "hdr"), optional=OPTIONAL_INTERVAL_COLUMNS)  # fmt: skip

    def read_iterations(self, by_scenario: bool = False) -> pd.DataFrame:
        """Open-model iteration counts per interval (empty for a closed-model run); `by_scenario`:
        one row per (interval, scenario) in a run of several scenarios, else the run's (summed)."""
        numeric = tuple(c for c in ITERATION_COLUMNS[1:] if c != "scenario")
        frame = self._read_table(ITERATIONS_CSV, ITERATION_COLUMNS, time_column="start", numeric=numeric,
                                drop_damaged=("start", "interval_s", "scheduled", "started", "dropped"), optional=("scenario",))  # fmt: skip
        frame["scenario"] = scenario_of_rows(frame)
        keys = ["start", "scenario"] if by_scenario else ["start"]
        if frame.empty or not frame.duplicated(keys).any():
            return frame
        # A worker report later than the master's grace adds a second row for an interval (and each
        # scenario has its own): one row each.
        maxima = frame.groupby(keys, as_index=False)[["lateness_max_ms"]].max()
        counts = frame.drop(columns=["lateness_mean_ms", "lateness_max_ms", "interval_s", *([] if by_scenario else ["scenario"])])
        summed = counts.groupby(keys, as_index=False).sum()
        summed["interval_s"] = frame.groupby(keys)["interval_s"].first().to_numpy()
        if not by_scenario:
            summed["scenario"] = ""
        return summed.merge(maxima, on=keys).assign(lateness_mean_ms=float("nan"))[ITERATION_COLUMNS]

    def read_metrics(self) -> pd.DataFrame:
        """Collector output; an empty frame when the run has none."""
        import pandas as pd

        frame = self._read_table(METRICS_CSV, METRIC_COLUMNS, time_column="timestamp",
                                 keep_default_na=False, dtype={"labels": str})  # fmt: skip
        frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
        return frame

    def write_exceptions(self, rows: list[dict[str, Any]]) -> None:
        _write_atomic(self.path / EXCEPTIONS_CSV, _csv_text([EXCEPTION_COLUMNS, *([row[c] for c in EXCEPTION_COLUMNS] for row in rows)]))

    def read_exceptions(self) -> pd.DataFrame:
        """Task exceptions (an empty frame for runs recorded before the file existed)."""
        return self._read_table(EXCEPTIONS_CSV, EXCEPTION_COLUMNS, numeric=("count",), keep_default_na=False)

    def read_errors(self) -> pd.DataFrame:
        return self._read_table(ERRORS_CSV, ERROR_COLUMNS, numeric=("count",), keep_default_na=False)

    def _read_table(self, name: str, columns: list[str], time_column: str | None = None, numeric: tuple[str, ...] = (),
                    drop_damaged: tuple[str, ...] = (), optional: tuple[str, ...] = (), **read_csv: Any) -> pd.DataFrame:  # fmt: skip
        """A table file as a frame; empty (with its columns) when the file is absent or empty.
        With `drop_damaged`, rows missing any of those fields (or with a damaged histogram)
        are left out with a warning instead of refusing the file."""
        import pandas as pd

        path = self.path / name
        if not path.exists() or path.stat().st_size == 0:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
        try:
            frame = pd.read_csv(path, **read_csv)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise RunDirError(f"{path}: malformed CSV ({exc})") from exc
        for column in optional:
            if column not in frame.columns:
                frame[column] = pd.Series([float("nan")] * len(frame), dtype="object")
        missing = set(columns) - set(frame.columns)
        if missing:
            raise RunDirError(f"{path}: missing columns {sorted(missing)}")
        if drop_damaged and len(frame):
            damaged = frame[list(drop_damaged)].isna().any(axis=1)
            if "hdr" in drop_damaged:  # a cut base64 text is not a multiple of 4 long
                hdr = frame["hdr"].astype(str)
                damaged |= ~hdr.str.fullmatch(r"[A-Za-z0-9+/]*={0,2}") | (hdr.str.len() % 4 != 0)
                # A full disk can cut the last row's histogram at a multiple of 4: only decoding tells.
                # Torn only if the row before it decodes (every row corrupt is a corrupt file, said as such).
                last = frame.index[-1]
                if not damaged[last] and not _decodes(frame.at[last, "hdr"]) and (len(frame) == 1 or _decodes(frame["hdr"].iloc[-2])):
                    damaged[last] = True
            for column in (c for c in drop_damaged if c in numeric):
                damaged |= pd.to_numeric(frame[column], errors="coerce").isna()
            if damaged.any():
                lines = [int(i) + 2 for i in frame.index[damaged]]  # +1 for the header, +1 to count from 1
                shown = ", ".join(map(str, lines[:5])) + (" ..." if len(lines) > 5 else "")
                warnings.warn(RunDirWarning(f"{path}: {len(lines)} damaged row(s) left out (line {shown})"), stacklevel=2)
                frame = frame[~damaged].reset_index(drop=True)
        for column in numeric:
            values = pd.to_numeric(frame[column], errors="coerce")
            if values.isna().any() and column in ("requests", "failures", "count"):
                raise RunDirError(f"{path}: column {column!r} holds something that is not a number")
            frame[column] = values
        if time_column is not None:
            # ISO8601: an interval of 0.5 s writes whole seconds and milliseconds in one column
            frame[time_column] = pd.to_datetime(frame[time_column], utc=True, errors="coerce", format="ISO8601")
            if frame[time_column].isna().any():
                raise RunDirError(f"{path}: unparseable {time_column!r} timestamp")
        return frame

    def _read_json(self, name: str) -> Any:
        path = self.path / name
        if not path.exists():
            raise RunDirError(f"{path}: no such file (is {self.path} a run directory?)")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunDirError(f"{path}: malformed JSON ({exc})") from exc
        except OSError as exc:
            raise RunDirError(f"{path}: cannot read ({exc.strerror})") from exc
