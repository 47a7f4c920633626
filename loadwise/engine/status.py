"""How a run ended, as run.json says it: its status and the reason.

One verdict for both places that give it: the Locust process when it finishes its run
(loadwise.engine.plugin), and `loadwise run` when that process exited before it could
(loadwise.run.finish). Pure: plain facts in, (status, reason) out. Here rather than in
`loadwise.run`, so the Locust side never imports the orchestration.
"""

from __future__ import annotations

from loadwise.analysis.rundir import STATUS_COMPLETED, STATUS_FAILED, STATUS_INTERRUPTED


def run_status(*, planned_end_reached: bool = False, stopped_from_web_ui: bool = False, requests: int = 0,
               failures: int = 0, write_error: str | None = None, exit_code: int | None = None,
               interrupted: bool = False, aborted: str | None = None) -> tuple[str, str | None]:  # fmt: skip
    """The status and reason of a run.

    `write_error`: the first write to the run directory that failed; what came after is not
    in it, so the run failed whatever else happened. `exit_code`: the load generator exited
    (with it) before judging its run; `interrupted` then says `loadwise run` stopped it
    (Ctrl-C, SIGTERM, an overrun), else it failed on its own. Otherwise the Locust process
    judges: `completed` means the planned end was reached (or the web UI's Stop ended the
    test) with some request succeeding, or an --abort-on threshold stopped it (`aborted`, its
    description: the run did what it was asked, and says why it ended); stopped earlier is
    `interrupted`.
    """
    if write_error is not None:
        return STATUS_FAILED, f"the run directory could not be written: {write_error}"
    if exit_code is not None:
        return (STATUS_INTERRUPTED if interrupted else STATUS_FAILED,
                f"the load generator exited with code {exit_code} before finishing the run")  # fmt: skip
    if aborted is not None:
        return STATUS_COMPLETED, aborted
    succeeded = requests - failures
    if stopped_from_web_ui and succeeded:
        return STATUS_COMPLETED, "stopped by the user from the web UI"
    if not planned_end_reached and not stopped_from_web_ui:
        return STATUS_INTERRUPTED, "stopped before the planned end"
    if succeeded == 0:
        return STATUS_FAILED, f"no request succeeded ({failures} failed)"
    return STATUS_COMPLETED, None
