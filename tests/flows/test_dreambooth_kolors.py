"""The whole dreambooth flow on the tiny Kolors: generated masks, class images drawn by KolorsPipeline, ChatGLM3
caption caches in their own folder, training and evaluation; a second run is all Cached."""

from __future__ import annotations

import asyncio

import pytest

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from flows.dreambooth import dreambooth
from tests.flows.test_dreambooth_flow import task_states
from tests.flows.test_dreambooth_transformer_families import _with_generation

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def test_the_whole_kolors_flow_trains_and_evaluates_then_comes_back_cached(tmp_path) -> None:
    project = write_demo_project(tmp_path / "demo", family="kolors")
    config = _with_generation(load_run_config(project), str(tmp_path / "demo" / "models" / "clipseg"))

    first = dreambooth(config, return_state=True)
    assert first.is_completed()
    results = first.result()
    assert results["train"]["details"]["family"] == "kolors"
    assert results["text_cache"]["details"]["cache_uri"].rstrip("/").endswith("text_embeds_kolors")
    assert results["train"]["counts"]["steps"] == config.training.max_train_steps
    assert results["class_images"]["counts"]["images"] == 2
    assert results["evaluate"]["counts"]["weights"] >= 2  # base and final at least
    first_states = asyncio.run(task_states(first.state_details.flow_run_id))
    assert set(first_states.values()) <= {"Completed", "Cached"}, first_states

    second = dreambooth(config, return_state=True)
    assert second.result() == results
    assert set(asyncio.run(task_states(second.state_details.flow_run_id)).values()) == {"Cached"}
