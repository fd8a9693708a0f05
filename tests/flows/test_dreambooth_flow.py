"""The dreambooth flow: it walks the declared stages, and on the demo project stages run once, then
come back Cached."""

from __future__ import annotations

import asyncio
import sys

import pytest
from prefect import Task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.pipeline import STAGES, stage_names
from flows.dreambooth import STEPS, dreambooth

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory):
    return load_run_config(write_demo_project(tmp_path_factory.mktemp("demo")))


def test_the_flow_has_a_step_with_a_task_for_every_declared_stage_in_order() -> None:
    assert list(STEPS) == stage_names()  # so adding a stage cannot be half-done
    for stage in STAGES:
        step_module = vars(sys.modules[STEPS[stage.name].__module__])
        tasks = [value for value in step_module.values() if isinstance(value, Task)]
        assert any(task.fn.__module__.startswith("tasks.") for task in tasks), f"{stage.name}: no task from tasks/"
        assert callable(stage.run_locally), f"{stage.name}: no local runner"


async def task_states(flow_run_id, attempts: int = 150) -> dict[str, str]:
    """Task run name -> state name for every task under a flow run (subflows included).

    Read after the flow run ended, so every task run has ended too; but the API records task-run states from events
    it flushes in the background, so on a loaded machine a task run can be listed without its state or with an
    earlier one (Pending): the runs are read again (0.2 s apart) until every one has a final state.
    """
    for _ in range(attempts):
        states = await _task_states_once(flow_run_id)
        if None not in states.values():
            return states
        await asyncio.sleep(0.2)
    raise AssertionError(f"task runs without a recorded final state after {attempts} reads: {states}")


async def _task_states_once(flow_run_id) -> dict[str, str | None]:
    async with get_client() as client:
        flow_runs = [flow_run_id]
        states: dict[str, str | None] = {}
        while flow_runs:
            current = flow_runs.pop()
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[current])))
            for run in runs:
                if run.state is None or not run.state.is_final():  # its final state not recorded yet
                    states[run.name] = None
                elif run.state.state_details.child_flow_run_id is None:  # not a subflow wrapper
                    states[run.name] = run.state.name
            children = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id={"any_": [current]})
            )
            flow_runs.extend(child.id for child in children)
        return states


def test_second_run_is_all_cached(demo_config) -> None:
    first = dreambooth(demo_config, return_state=True)
    assert first.is_completed()
    ingested = first.result()["ingest"]
    assert set(ingested) == {"subject", "subject-masks", "regularisation"}
    assert ingested["subject"]["counts"] == {"accepted": 8, "rejected": 0}
    assert first.result()["train"]["counts"]["steps"] == demo_config.training.max_train_steps
    first_states = asyncio.run(task_states(first.state_details.flow_run_id))
    # The masks flow ingests the subject dataset first; the ingest flow then finds it Cached.
    assert set(first_states.values()) <= {"Completed", "Cached"}, first_states
    assert {"ingest-subject", "ingest-subject-masks", "ingest-regularisation"} <= set(first_states)
    assert [state for name, state in first_states.items() if name.startswith("train")] == ["Completed"]

    second = dreambooth(demo_config, return_state=True)
    assert second.result() == first.result()
    second_states = asyncio.run(task_states(second.state_details.flow_run_id))
    assert set(second_states) == set(first_states)
    assert set(second_states.values()) == {"Cached"}, second_states
