"""How a run ends on the local runner or master: run.json's verdict, times and totals, then summary.json.

Called once, when Locust quits (`loadwise.engine.plugin.Session.finish`), after the last
intervals were flushed; a web UI session calls it at the end of each of its tests.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from loadwise.analysis.redact import redact
from loadwise.analysis.rundir import iso_utc
from loadwise.engine import provenance
from loadwise.engine.recorder import OTHER_NAME
from loadwise.engine.shape import own_shape, planned_end_reached
from loadwise.engine.status import run_status

if TYPE_CHECKING:
    from loadwise.engine.plugin import Session

log = logging.getLogger("loadwise")


def finish(s: Session) -> None:
    assert s.info is not None and s.run_dir is not None
    ended = time.time()
    load_ended = min(s.load_ended or ended, ended)
    elapsed = load_ended - (s.test_started or load_ended)
    planned_end = planned_end_reached(s.env, elapsed)
    stopped_by_user = s.per_test and not s.quitting and not planned_end  # the web UI's Stop
    if own_shape(s.env) is not None:  # what the locustfile's shape actually produced
        s.info.shape_params = {"source": "locustfile", "peak_users": s.peak_users, "duration_s": round(elapsed, 3)}
    elif s.per_test and s.shape is None:  # users and spawn rate as the web UI's form gave them
        s.info.shape_params = {"source": "web UI", "users": s.opts.num_users, "spawn_rate": s.opts.spawn_rate,
                               "peak_users": s.peak_users, "duration_s": round(elapsed, 3)}  # fmt: skip
    s.info.status, s.info.status_reason = run_status(
        planned_end_reached=planned_end, stopped_from_web_ui=stopped_by_user, requests=s.total_requests,
        failures=s.total_failures, write_error=s.write_error,
        aborted=s.breach.describe() if s.breach else None)  # fmt: skip
    if s.breach is not None:
        s.info.aborted = s.breach.to_dict()
    s.info.ended_at = iso_utc(ended)
    s.info.load_ended_at = iso_utc(load_ended)
    if s.master is not None:
        s.master.record(s.info, ended)
    if s.open_model is not None:
        s.info.open_model = s.open_model.record()
    if s.mix is not None:
        s.info.scenarios = s.mix.records()
    provenance.add_class_counts(s.info.locust, s.class_counts(), s.class_peak_users)
    s.info.checks = s.checks.records()
    grouped = s.grouped_names
    if grouped:
        s.info.grouped_names = {"max_names": s.recorder.max_names, "grouped": len(grouped), "as": OTHER_NAME}
    try:
        s.run_dir.write_exceptions(provenance.exception_rows(s.env.runner))
        if s.keys is not None:
            s.run_dir.write_key_sample(sorted((t, redact(k)) for t, k, _ in s.keys.entries))
            s.info.key_sample = {"endpoints": sorted(s.keys.endpoints), "rate": s.keys.rate,
                                    "max_keys": s.keys.max_keys, "kept": len(s.keys.entries)}  # fmt: skip
        s.run_dir.write_info(s.info)
        from loadwise.analysis import summary as summaries  # pandas: only now, on the master, once

        summaries.write_summary(s.run_dir)
    except OSError as exc:  # `loadwise run` finishes run.json when it can; plain locust says so
        log.error("loadwise: cannot write to %s: %s; the run %s", s.run_dir.path, exc, s.info.status)
        return
    log.info("loadwise: run %s %s; run directory %s", s.info.id, s.info.status, s.run_dir.path)


