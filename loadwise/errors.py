"""The one base class of loadwise's expected errors, and the exit codes they carry.

Every part may import this module (it imports nothing): an error a user can cause by
what they typed or by a file they gave subclasses `LoadwiseError`, and the CLI prints it
as one line and exits with its `exit_code`, never a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the run failed or was interrupted, a gate or a threshold failed
EXIT_USAGE = 2  # bad arguments, a missing or malformed file, an unreachable service
EXIT_INTERNAL = 3  # a bug in loadwise: not the user's input (the traceback goes to a file)


class LoadwiseError(Exception):
    """Bad input or an unusable service: one line naming it, exit code 2 unless a subclass says otherwise."""

    exit_code: int = EXIT_USAGE


class UsageError(LoadwiseError):
    """Arguments that cannot be used together or do not fit the input."""
