"""The whole dreambooth flow on the tiny Flux Kontext with the demo's paired references (grayscale images the subject
images colour): class images drawn by FluxKontextPipeline, reference latents cached beside their edit images,
training conditioned on them, validation editing reference images; a second run is all Cached. The train flow killed
after its step-2 checkpoint resumes exactly."""

from __future__ import annotations

import json

import pytest

from dreamcore.config import RunConfig, load_run_config
from dreamcore.demo import write_demo_project
from tests.flows.test_dreambooth_transformer_families import whole_flow_then_cached
from tests.flows.test_train_flow_kolors import killed_then_resumed_exactly

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.mark.slow
def test_the_whole_kontext_flow_trains_on_references_and_evaluates_then_comes_back_cached(tmp_path) -> None:
    config = load_run_config(write_demo_project(tmp_path / "demo", family="kontext"))
    values = json.loads(config.model_dump_json())
    values["training"] |= {"class_images": {"prompt": "a photo of a toy", "count": 2, "num_inference_steps": 2,
                                            "batch_size": 2}, "max_train_steps": 4, "checkpointing_steps": 2,
                           "validation_steps": 2, "eval_steps_interval": 2}
    results = whole_flow_then_cached(RunConfig.model_validate(values), "kontext")
    assert results["vae_cache"]["subject"]["counts"]["images"] == 8
    rows = results["evaluate"]["details"]["rows"]
    assert {row["weights"] for row in rows} >= {"base", "final"}


@pytest.mark.parametrize("cached_demo", ["kontext"], indirect=True)
def test_kontext_training_killed_after_a_checkpoint_resumes_exactly(cached_demo, monkeypatch, tmp_path):
    killed_then_resumed_exactly(cached_demo, monkeypatch, tmp_path, "kontext",
                                on_straight=_lora_loads_into_the_kontext_pipeline_and_changes_its_edit)


def _lora_loads_into_the_kontext_pipeline_and_changes_its_edit(config: RunConfig, lora_folder) -> None:
    import numpy as np
    import torch
    from diffusers import FluxKontextPipeline
    from PIL import Image

    pipe = FluxKontextPipeline.from_pretrained(config.training.pretrained_model_name_or_path)
    reference = Image.new("RGB", (64, 64), (90, 90, 90))

    def edit():
        return pipe(prompt="colour the toy", image=reference, height=64, width=64, max_area=64 * 64, _auto_resize=False,
                    num_inference_steps=2, max_sequence_length=64, output_type="np",
                    generator=torch.Generator().manual_seed(0)).images

    before = edit()
    pipe.load_lora_weights(str(lora_folder))
    assert np.abs(edit() - before).max() > 0
