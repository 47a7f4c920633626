"""run_status: the one verdict both finishes give (the Locust process's, and `loadwise run`'s repair)."""

from __future__ import annotations

import pytest

from loadwise.analysis.rundir import STATUS_COMPLETED, STATUS_FAILED, STATUS_INTERRUPTED
from loadwise.engine.status import run_status


def test_a_run_that_reached_its_planned_end_completed_even_with_failures():
    assert run_status(planned_end_reached=True, requests=100, failures=40) == (STATUS_COMPLETED, None)


def test_a_run_stopped_before_its_planned_end_is_interrupted():
    assert run_status(planned_end_reached=False, requests=100) == (STATUS_INTERRUPTED, "stopped before the planned end")


def test_a_run_in_which_no_request_succeeded_failed():
    assert run_status(planned_end_reached=True, requests=7, failures=7) == (STATUS_FAILED, "no request succeeded (7 failed)")
    assert run_status(planned_end_reached=True) == (STATUS_FAILED, "no request succeeded (0 failed)")


def test_the_web_uis_stop_completes_a_test_that_got_answers():
    assert run_status(stopped_from_web_ui=True, requests=5, failures=1) == (STATUS_COMPLETED, "stopped by the user from the web UI")
    # Nothing succeeded: the Stop does not make it a completed run.
    assert run_status(stopped_from_web_ui=True, requests=5, failures=5) == (STATUS_FAILED, "no request succeeded (5 failed)")


@pytest.mark.parametrize("exit_code", [None, -9])
@pytest.mark.parametrize("planned_end_reached", [True, False])
def test_a_run_directory_that_could_not_be_written_failed_whatever_else(exit_code, planned_end_reached):
    status = run_status(planned_end_reached=planned_end_reached, requests=10, write_error="No space left on device",
                        exit_code=exit_code, interrupted=True)  # fmt: skip
    assert status == (STATUS_FAILED, "the run directory could not be written: No space left on device")


def test_a_generator_that_exited_before_judging_its_run():
    """`loadwise run`'s repair: interrupted if loadwise run stopped it, else it failed on its own."""
    reason = "the load generator exited with code -9 before finishing the run"
    assert run_status(exit_code=-9, interrupted=True) == (STATUS_INTERRUPTED, reason)
    assert run_status(exit_code=-9, interrupted=False) == (STATUS_FAILED, reason)
    assert run_status(exit_code=0, interrupted=False) == (STATUS_FAILED, reason.replace("-9", "0"))
