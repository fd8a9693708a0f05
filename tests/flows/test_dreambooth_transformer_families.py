"""The whole dreambooth flow on tiny SD3 and Flux: generated masks, class images drawn by the base model,
caches, flow-matching training and evaluation; a second run is all Cached."""

from __future__ import annotations

import asyncio
import json

import pytest

from dreamcore.config import RunConfig, load_run_config
from dreamcore.demo import write_demo_project
from flows.dreambooth import dreambooth
from tests.flows.test_dreambooth_flow import task_states

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def _with_generation(config: RunConfig, clipseg: str) -> RunConfig:
    """The demo config plus CLIPSeg masks for the subject and two class images drawn by the base model."""
    values = json.loads(config.model_dump_json())
    values["training"] |= {
        "mask_generation": {"dataset": "subject", "prompt": "toy", "model": clipseg},
        "class_images": {"prompt": "a photo of a toy", "count": 2, "num_inference_steps": 2, "batch_size": 2},
    }
    return RunConfig.model_validate(values)


@pytest.mark.parametrize("family", ["sd3", "flux", "flux2",
                                    "deepfloyd",
                                    ])
def test_the_whole_flow_trains_and_evaluates_then_comes_back_cached(tmp_path, family) -> None:
    project = write_demo_project(tmp_path / "demo", family=family)
    config = _with_generation(load_run_config(project), str(tmp_path / "demo" / "models" / "clipseg"))
    whole_flow_then_cached(config, family)


def whole_flow_then_cached(config: RunConfig, family: str) -> dict:
    """Run the flow: it trains `family` and evaluates; run it again: all Cached, the same results (returned)."""
    first = dreambooth(config, return_state=True)
    assert first.is_completed()
    results = first.result()
    assert results["train"]["details"]["family"] == family
    assert results["train"]["counts"]["steps"] == config.training.max_train_steps
    assert results["class_images"]["counts"]["images"] == 2
    assert results["evaluate"]["counts"]["weights"] >= 2  # base and final at least
    first_states = asyncio.run(task_states(first.state_details.flow_run_id))
    assert set(first_states.values()) <= {"Completed", "Cached"}, first_states

    second = dreambooth(config, return_state=True)
    assert second.result() == results
    assert set(settled_task_states(second.state_details.flow_run_id).values()) == {"Cached"}
    return results


def settled_task_states(flow_run_id, wait_s: float = 30.0) -> dict[str, str]:
    """task_states once no task run is still Pending or Running: task states reach the API through events, so
    a read right after a fast flow may see a task's first state before its last (seen on an idle machine)."""
    import time

    deadline = time.monotonic() + wait_s
    while True:
        states = asyncio.run(task_states(flow_run_id))
        if not {"Pending", "Running"} & set(states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)
