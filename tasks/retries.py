"""Retry policy shared by the stage tasks: retry transient failures, never bad input."""

from __future__ import annotations

from collections.abc import Callable


def retry_unless(*bad_input: type[BaseException]) -> Callable:
    """A Prefect retry_condition_fn that retries unless the failure is one of `bad_input`
    (a wrong config or broken data fails the same way every time; a lost connection may not)."""

    def should_retry(task, task_run, state) -> bool:
        return not isinstance(state.result(raise_on_failure=False), bad_input)

    return should_retry
