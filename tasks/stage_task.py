"""The Prefect @task of a stage, with the options every stage task shares.

Each stage task states only what is its own (its name, run name, which failures a retry cannot fix, how
often to retry, how to read its key from its parameters); this module holds the rest: the cache key
`<stage>-<stage key>`, JSON results persisted (in the result storage the flow sets), and the retry
condition that refuses bad input (tasks.retries).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task

from tasks.retries import retry_unless


def plan_key(parameters: dict[str, Any]) -> str:
    """The stage key of a task whose `plan` parameter holds it (a typed stage plan: TrainPlan, ...)."""
    return parameters["plan"].key


def stage_task(stage: str, *, bad_input: tuple[type[BaseException], ...], retries: int, retry_delay_seconds: float,
               key: Callable[[dict[str, Any]], str] = plan_key, **options: Any) -> Callable:
    """`@task` for a stage task: cached under `<stage>-<key(parameters)>`, results persisted as JSON, retried
    `retries` times unless the failure is one of `bad_input` (or a RunFault / credential error); `options`
    are the task's own (name, task_run_name, ...)."""

    def cache_key(context, parameters: dict[str, Any]) -> str:
        return f"{stage}-{key(parameters)}"

    return task(cache_key_fn=cache_key, persist_result=True, result_serializer="json", retries=retries,
                retry_delay_seconds=retry_delay_seconds, retry_condition_fn=retry_unless(*bad_input), **options)
