"""The recorder: every request's response time into an HDR histogram per endpoint per interval.

Intervals are aligned to the wall clock (`floor(t / interval) * interval`), so the
histograms of Locust workers on different processes line up and merge exactly on the
master. `Recorder` is plain Python (no Locust); `loadwise.engine.plugin` wires it to Locust's
events and to the run directory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from array import array
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from hdrh.histogram import HdrHistogram

from loadwise.analysis import histogram
from loadwise.analysis.cache.keys import HASH_SPACE, string_hash
from loadwise.analysis.redact import redact_cached
from loadwise.analysis.rundir import iso_utc
from loadwise.shapes.rates import LATE_AFTER_MS
from loadwise.settings import DEFAULT_INTERVAL_S


Key = tuple[float, str, str]  # (interval start, method, name)
# Open-model iteration counts per interval (iterations.csv), and the lateness they add up.
ITERATION_COUNTS = ("scheduled", "started", "late", "dropped", "generator_late")
_COUNT_INDEX = {kind: i for i, kind in enumerate(ITERATION_COUNTS)}
_LATE = _COUNT_INDEX["late"]


SPARSE_VALUES = 512  # a cell keeps raw values up to this many requests, then an HDR histogram
MAX_NAMES = 1000  # distinct (method, name) endpoints per run; beyond, requests are grouped under OTHER_NAME
OTHER_NAME = "[other names]"  # the name of the requests beyond MAX_NAMES distinct endpoints


@dataclass
class Cell:
    """One endpoint during one interval.

    An HdrHistogram of this range and precision holds ~185 KB of counts whatever it
    records, so a cell keeps its first SPARSE_VALUES response times as raw values (4 KB)
    and builds the histogram only when it gets busier: a run that puts ids into its
    names then costs kilobytes per name, not a histogram each.

    A request only appends its response time to `pending` (the cost every request pays,
    on the load generator's own CPU); `settle` folds pending values into the sums and the
    histogram in bulk, once a second and before anything reads the cell.
    """

    requests: int = 0
    failures: int = 0
    bytes: int = 0
    sum_ms: float = 0.0
    max_ms: float = 0.0
    min_ms: float = math.inf
    hdr: HdrHistogram | None = None
    values: array = field(default_factory=lambda: array("d"))
    pending: array = field(default_factory=lambda: array("d"))

    def add(self, response_time_ms: float, response_length: int, failed: bool) -> None:
        self.requests += 1
        self.failures += failed
        self.bytes += response_length
        self.pending.append(response_time_ms)

    def settle(self) -> None:
        """Fold the pending response times into sum, max, min and the raw values or histogram."""
        pending = self.pending
        if not pending:
            return
        self.pending = array("d")
        self.sum_ms += sum(pending)
        self.max_ms = max(self.max_ms, max(pending))
        self.min_ms = min(self.min_ms, min(pending))
        if self.hdr is None and len(self.values) + len(pending) <= SPARSE_VALUES:
            self.values.extend(pending)
            return
        if self.hdr is None:
            self.hdr = histogram.new_histogram()
            histogram.record_many_ms(self.hdr, self.values)
            self.values = array("d")
        histogram.record_many_ms(self.hdr, pending)

    def histogram(self) -> HdrHistogram:
        """The cell's HDR histogram (built from the raw values while the cell is sparse)."""
        self.settle()
        if self.hdr is not None:
            return self.hdr
        built = histogram.new_histogram()
        histogram.record_many_ms(built, self.values)
        return built

    def merge(self, other: Cell) -> None:
        self.settle()
        other.settle()
        self.requests += other.requests
        self.failures += other.failures
        self.bytes += other.bytes
        self.sum_ms += other.sum_ms
        self.max_ms = max(self.max_ms, other.max_ms)
        self.min_ms = min(self.min_ms, other.min_ms)
        if self.hdr is None and other.hdr is None and len(self.values) + len(other.values) <= SPARSE_VALUES:
            self.values.extend(other.values)
            return
        merged = self.histogram()
        merged.add(other.histogram())
        self.hdr, self.values = merged, array("d")

    def to_wire(self) -> list[Any]:
        """For a worker's report to the master: raw values while sparse, else the standard HDR encoding."""
        self.settle()
        head = [self.requests, self.failures, self.bytes, self.sum_ms, self.max_ms]
        tail = ["", list(self.values)] if self.hdr is None else [histogram.encode(self.hdr), None]
        return head + tail + [self.min_ms if math.isfinite(self.min_ms) else None]

    @classmethod
    def from_wire(cls, data: list[Any]) -> Cell:
        requests, failures, size, sum_ms, max_ms, encoded, *rest = data
        cell = cls(int(requests), int(failures), int(size), float(sum_ms), float(max_ms))
        if encoded:
            cell.hdr = histogram.decode(encoded)
        else:
            cell.values = array("d", rest[0] if rest and rest[0] else [])
        if len(rest) > 1 and rest[1] is not None:  # a worker of an older loadwise sends no minimum
            cell.min_ms = float(rest[1])
        elif len(cell.values):
            cell.min_ms = min(cell.values)
        return cell


@dataclass(slots=True)
class _Hot:
    """An endpoint's cells in the interval being recorded, found by the raw request name."""

    method: str
    start: float
    end: float
    cell: Cell
    service: Cell | None
    total: Cell | None


class Recorder:
    """Holds open intervals until they are closed and written; merges what workers send."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S, keep_totals: bool = False, max_names: int = MAX_NAMES,
                 scenario: str = ""):  # fmt: skip
        if interval_s <= 0:
            raise ValueError("interval must be positive")
        self.interval_s = float(interval_s)
        self.scenario = scenario  # the scenario its requests came from, in a run of several ("": a run of one)
        self._scenario_users: dict[float, list[float]] = {}  # interval start -> [sum of the scenario's users, samples]
        self.max_names = max_names
        self.names: set[tuple[str, str]] = set()
        self.grouped_names: set[int] = set()  # hashes of the endpoints recorded as OTHER_NAME
        self.cells: dict[Key, Cell] = {}
        # Whole-run cell per (method, name), for the Prometheus exporter; off on workers.
        self.totals: dict[tuple[str, str], Cell] | None = {} if keep_totals else None
        self.errors: dict[tuple[str, str, str], int] = {}
        self._users: dict[float, list[float]] = {}  # interval start -> [sum of samples, samples]
        self.total_requests = 0
        self.total_failures = 0
        # Open model: `cells` hold latencies from each request's intended start, these the service times.
        self.service_cells: dict[Key, Cell] | None = None
        self.iterations: dict[float, list[float]] = {}  # interval start -> ITERATION_COUNTS + [lateness sum, max]
        self.iteration_totals = dict.fromkeys(ITERATION_COUNTS, 0)
        self._hot: dict[str, _Hot] = {}  # raw request name -> its cells in the current interval (record's short path)

    def measure_intended(self) -> None:
        """Open model from now on: latencies from the intended start, service times beside them."""
        if self.service_cells is None:
            self.service_cells = {}
            self._hot = {}

    def new_run(self) -> None:
        """Forget everything but the exporter's whole-session totals: the next test of a web UI
        session is its own run (what was not written by now belongs to no run directory)."""
        self.names, self.grouped_names, self.cells, self.errors, self._users = set(), set(), {}, {}, {}
        self._scenario_users = {}
        self._hot = {}
        self.total_requests = self.total_failures = 0
        self.service_cells = None if self.service_cells is None else {}
        self.iterations, self.iteration_totals = {}, dict.fromkeys(ITERATION_COUNTS, 0)

    def interval_start(self, at: float) -> float:
        return math.floor(at / self.interval_s) * self.interval_s

    def record(
        self, method: str, name: str, response_time_ms: float, response_length: int, error: str | None, at: float,
        lateness_ms: float = 0.0,
    ) -> None:
        """One request; `lateness_ms` (open model) is how late its iteration started.

        Every request of a load test passes here, on the generator's own CPU: a successful
        request to an endpoint already seen in the current interval takes the short path
        (one dict lookup by the raw name, two comparisons, three additions); the rest (a new
        interval or endpoint, a failure) the full one, which also refreshes the short path."""
        hot = self._hot.get(name)
        if hot is not None and error is None and hot.method == method and hot.start <= at < hot.end:
            response_time_ms = response_time_ms if response_time_ms > 0.0 else 0.0
            length = response_length or 0
            self.total_requests += 1
            if hot.service is not None:
                hot.service.requests += 1
                hot.service.bytes += length
                hot.service.pending.append(response_time_ms)
                response_time_ms += lateness_ms
            cell = hot.cell
            cell.requests += 1
            cell.bytes += length
            cell.pending.append(response_time_ms)
            if hot.total is not None:
                hot.total.add(response_time_ms, length, False)
            return
        self._record(method, name, response_time_ms, response_length, error, at, lateness_ms)

    def _record(
        self, method: str, raw_name: str, response_time_ms: float, response_length: int, error: str | None, at: float,
        lateness_ms: float,
    ) -> None:
        # A URL requested without name= is its own name: a token in its query must not become an endpoint.
        name = self._bounded_name(method, redact_cached(raw_name))
        start = self.interval_start(at)
        key = (start, method, name)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = Cell()
        response_time_ms = max(float(response_time_ms or 0.0), 0.0)
        service = None
        if self.service_cells is not None:
            service = self.service_cells.get(key)
            if service is None:
                service = self.service_cells[key] = Cell()
            service.add(response_time_ms, int(response_length or 0), error is not None)
            response_time_ms += lateness_ms
        cell.add(response_time_ms, int(response_length or 0), error is not None)
        total = None
        if self.totals is not None:
            total = self.totals.get((method, name))
            if total is None:
                total = self.totals[(method, name)] = Cell()
            total.add(response_time_ms, int(response_length or 0), error is not None)
        self.total_requests += 1
        if error is not None:
            self.total_failures += 1
            err_key = (method, name, redact_cached(error))
            self.errors[err_key] = self.errors.get(err_key, 0) + 1
        if start + self.interval_s > at:  # never a cell the clock has left (a float edge)
            self._hot[raw_name] = _Hot(method, start, start + self.interval_s, cell, service, total)

    def _bounded_name(self, method: str, name: str) -> str:
        """The name, or OTHER_NAME once the run has MAX_NAMES distinct endpoints (a locustfile
        that puts ids into names would otherwise grow without bound); grouped names are counted."""
        endpoint = (method, name)
        if endpoint in self.names:
            return name
        if len(self.names) < self.max_names:
            self.names.add(endpoint)
            return name
        if len(self.grouped_names) < 100_000:  # enough to say how many, bounded itself
            self.grouped_names.add(hash(endpoint))
        return OTHER_NAME

    def count_iterations(self, kind: str, at: float, lateness_ms: float | None = None, n: int = 1) -> None:
        """Count open-model iterations of `kind` (one of ITERATION_COUNTS) in the interval of `at`;
        a started one also adds its lateness (and counts as late beyond LATE_AFTER_MS)."""
        row = self._iteration_row(self.interval_start(at))
        row[_COUNT_INDEX[kind]] += n
        self.iteration_totals[kind] += n
        if lateness_ms is not None:
            row[-2] += lateness_ms
            if lateness_ms > row[-1]:
                row[-1] = lateness_ms
            if lateness_ms > LATE_AFTER_MS:
                row[_LATE] += 1
                self.iteration_totals["late"] += 1

    def _iteration_row(self, start: float) -> list[float]:
        """An interval's iteration counts: ITERATION_COUNTS, then the lateness sum and maximum (ms)."""
        row = self.iterations.get(start)
        if row is None:
            row = self.iterations[start] = [0.0] * (len(ITERATION_COUNTS) + 2)
        return row

    def close_iterations(self, before: float) -> list[dict[str, Any]]:
        """Remove and return as iterations.csv rows the iteration counts of intervals ended by `before`."""
        rows = []
        for start in sorted(s for s in self.iterations if s + self.interval_s <= before):
            counts = self.iterations.pop(start)
            started = counts[_COUNT_INDEX["started"]]
            rows.append({"start": iso_utc(start), "interval_s": self.interval_s,
                         **{k: int(v) for k, v in zip(ITERATION_COUNTS, counts)},
                         "lateness_mean_ms": round(counts[-2] / started, 3) if started else "",
                         "lateness_max_ms": round(counts[-1], 3), "scenario": self.scenario})  # fmt: skip
        return rows

    def sample_users(self, users: float, at: float, scenario_users: float | None = None) -> None:
        """The run's active users now (and, in a run of several scenarios, this one's)."""
        start = self.interval_start(at)
        acc = self._users.setdefault(start, [0.0, 0])
        acc[0] += users
        acc[1] += 1
        if scenario_users is not None:
            own = self._scenario_users.setdefault(start, [0.0, 0])
            own[0] += scenario_users
            own[1] += 1

    def close(self, before: float, pause: Callable[[], Any] | None = None) -> list[dict[str, Any]]:
        """Remove and return as run-directory rows every interval that ended at or before `before`.
        `pause` runs between cells: settling a busy cell's second of response times takes a while,
        and an open-model run's arrivals must not wait behind all of them at once."""
        for cell in [*self.cells.values(), *(self.service_cells or {}).values()]:  # pending: a second's worth at most
            cell.settle()
            if pause is not None:
                pause()
        closed = sorted(k for k in self.cells if k[0] + self.interval_s <= before)
        if closed:
            self._hot = {}  # the short path must not add to a cell that is written and gone
        service = self.service_cells if self.service_cells is not None else {}
        rows = []
        for key in closed:
            rows.append(self._row(key, self.cells.pop(key), service.pop(key, None)))
            if pause is not None:
                pause()
        for samples in (self._users, self._scenario_users):
            for start in [s for s in samples if s + self.interval_s <= before]:
                del samples[start]
        return rows

    def _row(self, key: Key, cell: Cell, service: Cell | None = None) -> dict[str, Any]:
        start, method, name = key
        samples, own = self._users.get(start), self._scenario_users.get(start)
        hdr = cell.histogram()
        pct = histogram.percentiles_ms(hdr, cell.min_ms if math.isfinite(cell.min_ms) else None, cell.max_ms)
        return {
            "start": iso_utc(start),
            "interval_s": self.interval_s,
            "method": method,
            "name": name,
            "requests": cell.requests,
            "failures": cell.failures,
            "users": round(samples[0] / samples[1], 1) if samples else "",
            "mean_ms": round(cell.sum_ms / cell.requests, 3) if cell.requests else "",
            **{k: round(v, 3) for k, v in pct.items()},
            "max_ms": round(cell.max_ms, 3),
            "bytes": cell.bytes,
            "hdr": histogram.encode(hdr),
            "service_hdr": histogram.encode(service.histogram()) if service is not None else "",
            "scenario": self.scenario,
            "scenario_users": round(own[0] / own[1], 1) if own else "",
        }

    def error_rows(self) -> list[dict[str, Any]]:
        return error_rows([self])

    # -- distributed: workers drain, the master absorbs ---------------------------------

    def drain(self) -> dict[str, Any]:
        """Everything recorded since the last drain, in a msgpack-friendly form; resets the recorder."""
        payload = {
            "cells": [[start, method, name, cell.to_wire()] for (start, method, name), cell in self.cells.items()],
            "errors": [[m, n, e, c] for (m, n, e), c in self.errors.items()],
        }
        if self.service_cells is not None:
            payload["service_cells"] = [[s, m, n, cell.to_wire()] for (s, m, n), cell in self.service_cells.items()]
            self.service_cells = {}
        if self.iterations:
            payload["iterations"] = [[start, counts] for start, counts in self.iterations.items()]
            self.iterations = {}
        self.cells = {}
        self.errors = {}
        self._hot = {}
        return payload

    def absorb(self, payload: dict[str, Any]) -> int:
        """Merge a worker's drained payload; returns how many requests it carried."""
        carried = 0
        for start, method, name, wire in payload.get("cells", []):
            incoming = Cell.from_wire(wire)
            name = self._bounded_name(method, name)  # each worker saw only its own share of the names
            key = (float(start), method, name)
            if self.totals is not None:
                if (method, name) not in self.totals:
                    self.totals[(method, name)] = Cell()
                self.totals[(method, name)].merge(incoming)
            _merge_cell(self.cells, key, incoming)
            self.total_requests += incoming.requests
            self.total_failures += incoming.failures
            carried += incoming.requests
        if payload.get("service_cells") is not None:
            self.measure_intended()
            assert self.service_cells is not None
            for start, method, name, wire in payload["service_cells"]:
                _merge_cell(self.service_cells, (float(start), method, self._bounded_name(method, name)), Cell.from_wire(wire))
        for start, counts in payload.get("iterations", []):
            row = self._iteration_row(float(start))
            for i, kind in enumerate(ITERATION_COUNTS):
                row[i] += counts[i]
                self.iteration_totals[kind] += int(counts[i])
            row[-2] += counts[-2]
            row[-1] = max(row[-1], counts[-1])
        for method, name, error, count in payload.get("errors", []):
            err_key = (method, self._bounded_name(method, name), error)
            self.errors[err_key] = self.errors.get(err_key, 0) + int(count)
        return carried


def error_rows(recorders: list[Recorder]) -> list[dict[str, Any]]:
    """errors.csv's rows: the recorders' failures added up per (method, name, error), most first."""
    counts: dict[tuple[str, str, str], int] = {}
    for recorder in recorders:
        for key, count in recorder.errors.items():
            counts[key] = counts.get(key, 0) + count
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"method": m, "name": n, "error": e, "count": c} for (m, n, e), c in ordered]


def _merge_cell(cells: dict[Key, Cell], key: Key, incoming: Cell) -> None:
    if key in cells:
        cells[key].merge(incoming)
    else:
        cells[key] = incoming


MAX_KEYS = 200_000  # a key sample never holds more; past it the sampling rate halves


class KeySample:
    """Request keys of cacheable endpoints, spatially sampled (SHARDS-style: a key is kept
    when its hash falls below a threshold), so a long run stays bounded in memory: at most
    MAX_KEYS entries (about 20 MB), the rate halving whenever the bound is reached."""

    def __init__(self, endpoints: list[str], max_keys: int = MAX_KEYS):
        self.endpoints = set(endpoints)
        self.max_keys = max_keys
        self.threshold = HASH_SPACE
        self.entries: list[tuple[float, str, int]] = []  # (time, key, hash)

    @property
    def rate(self) -> float:
        return self.threshold / HASH_SPACE

    def offer(self, name: str, url: str | None, at: float) -> None:
        if name not in self.endpoints:
            return
        parts = urlsplit(url or "")
        key = f"{name}|{parts.path}" + (f"?{parts.query}" if parts.query else "")
        h = string_hash(key)
        if h < self.threshold:
            self.entries.append((at, key, h))
            if len(self.entries) > self.max_keys:
                self._tighten(self.threshold // 2)

    def _tighten(self, threshold: int) -> None:
        self.threshold = min(self.threshold, threshold)
        self.entries = [e for e in self.entries if e[2] < self.threshold]

    def drain(self) -> dict[str, Any]:
        out = {"threshold": self.threshold, "entries": [[t, k, h] for t, k, h in self.entries]}
        self.entries = []
        return out

    def absorb(self, payload: dict[str, Any]) -> None:
        if payload.get("threshold", self.threshold) < self.threshold:
            self._tighten(int(payload["threshold"]))
        self.entries += [(float(t), str(k), int(h)) for t, k, h in payload.get("entries", []) if h < self.threshold]
        if len(self.entries) > self.max_keys:
            self._tighten(self.threshold // 2)
