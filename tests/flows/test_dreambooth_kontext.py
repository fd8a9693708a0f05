"""The whole dreambooth flow on the tiny Flux Kontext with the demo's paired references (grayscale images the subject
images colour): class images drawn by FluxKontextPipeline, reference latents cached beside their edit images,
training conditioned on them, validation editing reference images; a second run is all Cached. The train flow killed
after its step-2 checkpoint resumes exactly."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from dreamcore.config import RunConfig, load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.pipeline import training
from dreamcore.storage import ArtifactStore
from flows.train import train_flow
from tasks.results import RESULTS_FOLDER
from tests.flows.test_dreambooth_transformer_families import whole_flow_then_cached
from tests.training_fault import with_training_fault

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
    import torch

    config, vae, text = cached_demo
    store = ArtifactStore(config.training.resolved_storage_root)
    straight = train_flow(config, vae, text)
    straight_lora = load_file(store.path(f"train/{straight.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    straight_report = store.read_json(f"train/{straight.key}/report.json")
    _lora_loads_into_the_kontext_pipeline_and_changes_its_edit(
        config, store.path(f"train/{straight.key}/export/diffusers"))
    store.remove(f"train/{straight.key}")  # the same key trains again (its Prefect result too), killed this time
    store.remove(RESULTS_FOLDER)

    fault = tmp_path / "fault"
    fault.write_text("2")  # the first attempt dies after its step-2 checkpoint
    monkeypatch.setattr(training, "train_stage", with_training_fault(training.train_stage, fault))
    crashed = train_flow(config, vae, text, return_state=True)
    assert crashed.is_failed() and "on purpose" in str(crashed.result(raise_on_failure=False))

    resumed = train_flow(config, vae, text)
    assert resumed.key == straight.key and resumed.details["family"] == "kontext"
    report = store.read_json(f"train/{resumed.key}/report.json")
    assert report["resumed_from"] == 2 and report["steps"] == 4
    assert [e["loss"] for e in report["history"]] == pytest.approx([e["loss"] for e in straight_report["history"]])
    lora = load_file(store.path(f"train/{resumed.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    assert lora.keys() == straight_lora.keys()
    assert all(torch.allclose(lora[name], straight_lora[name], atol=1e-6) for name in lora)


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
