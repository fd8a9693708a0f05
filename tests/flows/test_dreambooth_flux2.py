"""The whole dreambooth flow on the tiny Flux.2 (klein): generated masks, class images drawn by Flux2KleinPipeline,
Qwen3 caption caches in their own folder, normalised patch latents, training and evaluation; a second run is all
Cached."""

from __future__ import annotations

import pytest

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from tests.flows.test_dreambooth_transformer_families import _with_generation, whole_flow_then_cached

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def test_the_whole_flux2_flow_trains_and_evaluates_then_comes_back_cached(tmp_path) -> None:
    project = write_demo_project(tmp_path / "demo", family="flux2")
    config = _with_generation(load_run_config(project), str(tmp_path / "demo" / "models" / "clipseg"))
    results = whole_flow_then_cached(config, "flux2")
    assert results["text_cache"]["details"]["cache_uri"].rstrip("/").endswith("text_embeds_flux2")
