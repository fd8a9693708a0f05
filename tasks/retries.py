"""Retry policy shared by the stage tasks: retry transient failures, never bad input."""

from __future__ import annotations

from collections.abc import Callable

from dreamcore.storage.faults import RunFault, StorageUnreachable, access_fault


def retry_unless(*bad_input: type[BaseException]) -> Callable:
    """A Prefect retry_condition_fn that retries unless the failure is one of `bad_input`, a RunFault or a
    credential error (a wrong config or broken data fails the same way every time; a lost connection may not)."""

    def should_retry(task, task_run, state) -> bool:
        error = state.result(raise_on_failure=False)
        if isinstance(error, StorageUnreachable):  # the endpoint may be back: the retry resumes what was finished
            return True
        # A full or read-only disk, missing or refused credentials (RunFault, or botocore's own errors)
        # fail the same way on a retry: say so now rather than after the retry delay.
        if isinstance(error, (*bad_input, RunFault)):
            return False
        return not (isinstance(error, BaseException) and access_fault("", error) is not None)

    return should_retry
