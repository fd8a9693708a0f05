"""The whole dreambooth flow on the tiny Qwen-Image: generated masks, class images drawn by QwenImagePipeline,
Qwen2.5-VL caption caches in their own folder, flow-matching training and evaluation; a second run is all Cached."""

from __future__ import annotations

import json

import pytest

from dreamcore.config import RunConfig, load_run_config
from dreamcore.demo import write_demo_project
from tests.flows.test_dreambooth_transformer_families import _with_generation, whole_flow_then_cached

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def test_the_whole_qwen_image_flow_trains_and_evaluates_then_comes_back_cached(tmp_path) -> None:
    project = write_demo_project(tmp_path / "demo", family="qwen_image")
    config = _with_generation(load_run_config(project), str(tmp_path / "demo" / "models" / "clipseg"))
    # Class images at the data's 64 px: QwenImagePipeline's native size is 128 latents a side whatever the VAE, and
    # the tiny video VAE's mid-block attention over 128 x 128 latents takes seconds an image on a CPU.
    values = json.loads(config.model_dump_json(exclude_unset=True))
    values["training"]["class_images"]["resolutions"] = [64]
    results = whole_flow_then_cached(RunConfig.model_validate(values), "qwen_image")
    assert results["text_cache"]["details"]["cache_uri"].rstrip("/").endswith("text_embeds_qwen_image")
