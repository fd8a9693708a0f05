"""The whole dreambooth flow on the tiny Chroma and Lumina2: generated masks, class images drawn by their stock
pipelines, sequence-encoder caption caches with the mask each pipeline attends through, training and evaluation; a
second run is all Cached."""

from __future__ import annotations

import pytest

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from tests.flows.test_dreambooth_transformer_families import _with_generation, whole_flow_then_cached

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


@pytest.mark.parametrize("family", ["chroma", "lumina2"])
def test_the_whole_flow_trains_and_evaluates_then_comes_back_cached(tmp_path, family) -> None:
    project = write_demo_project(tmp_path / "demo", family=family)
    config = _with_generation(load_run_config(project), str(tmp_path / "demo" / "models" / "clipseg"))
    results = whole_flow_then_cached(config, family)
    assert set(results["train"]["details"]["exports"]) == {"diffusers_lora"}
