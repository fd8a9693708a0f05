"""DeepFloyd IF stages I and II through the flows: a training killed after its step-2 checkpoint resumes from it
on the rerun and ends exactly where an uninterrupted run ends; the stage-II demo validates by upscaling dataset
images; the whole stage-II dreambooth flow draws its class images and validation images through stage I, then
comes back all Cached."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.pipeline import training
from dreamcore.storage import ArtifactStore
from flows.train import train_flow
from tests.conftest import cache_demo_project
from tests.training_fault import with_training_fault

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _lora(store, result):
    return load_file(store.path(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors"))


@pytest.mark.parametrize("family", ["deepfloyd", "deepfloyd-ii"])
def test_a_killed_training_resumes_exactly(tmp_path, monkeypatch, family) -> None:
    config, vae, text = cache_demo_project(tmp_path / "straight", family)
    store = ArtifactStore(config.training.resolved_storage_root)
    straight = train_flow(config, vae, text)

    config, vae, text = cache_demo_project(tmp_path / "killed", family)
    store_b = ArtifactStore(config.training.resolved_storage_root)
    fault = tmp_path / "fault"
    fault.write_text("2")  # the first attempt dies after its step-2 checkpoint
    monkeypatch.setattr(training, "train_stage", with_training_fault(training.train_stage, fault))
    crashed = train_flow(config, vae, text, return_state=True)
    assert crashed.is_failed() and not fault.exists()
    resumed = train_flow(config, vae, text)

    report = store_b.read_json(f"train/{resumed.key}/report.json")
    assert report["resumed_from"] == 2 and report["steps"] == 4 and resumed.details["family"] == family
    expected, got = _lora(store, straight), _lora(store_b, resumed)
    assert expected.keys() == got.keys()
    assert all(torch.allclose(expected[k], got[k], atol=1e-6) for k in expected)
    straight_losses = [e["loss"] for e in store.read_json(f"train/{straight.key}/report.json")["history"]]
    assert [e["loss"] for e in report["history"]] == pytest.approx(straight_losses)


def test_the_stage_two_demo_ingests_caches_trains_and_validates_by_upscaling(tmp_path) -> None:
    """`dreamcore demo --family deepfloyd-ii`'s project: the caches hold the 64 px targets, training makes their
    16 px inputs, and validation upscales dataset images shrunk by 4 back to 64 px."""
    from PIL import Image

    from dreamcore.evaluate.plans import validation_plan_for
    from dreamcore.evaluate.validation import generate_images
    from dreamcore.models import family_named, load_pipeline

    config, vae, text = cache_demo_project(tmp_path / "demo", "deepfloyd-ii")
    store = ArtifactStore(config.training.resolved_storage_root)
    result = train_flow(config, vae, text)
    assert result.details["family"] == "deepfloyd-ii" and torch.isfinite(torch.tensor(result.details["final_loss"]))
    assert _lora(store, result) and result.counts["steps"] == 4

    plan = validation_plan_for(config, store, family_named("deepfloyd-ii"))
    assert plan.source_scale == 4 and plan.sources and plan.as_dict()["source_scale"] == 4
    pipe = load_pipeline(config.training.pretrained_model_name_or_path)
    images = generate_images(pipe, plan)
    assert images and all(isinstance(drawn.image, Image.Image) and drawn.image.size == (64, 64) for drawn in images)


@pytest.mark.slow
def test_the_whole_stage_two_flow_draws_through_stage_one_then_comes_back_cached(tmp_path) -> None:
    """Stage II cannot draw from a prompt: its class images are stage I's (class_images.model) upscaled by the
    base model, and its validation upscales what stage I draws from the validation prompt
    (deepfloyd_validation_stage1_model)."""
    from dreamcore.config import RunConfig, load_run_config
    from dreamcore.demo import write_demo_project
    from tests.flows.test_dreambooth_transformer_families import _with_generation, whole_flow_then_cached

    models = tmp_path / "demo" / "models"
    config = _with_generation(load_run_config(write_demo_project(tmp_path / "demo", family="deepfloyd-ii")),
                              str(models / "clipseg"))
    values = config.model_dump(mode="json")
    # IF draws with its own scheduler (the default that class_image_plan picks when none was set; the dump sets it)
    values["training"]["class_images"] |= {"model": str(models / "deepfloyd"), "scheduler": "default"}
    values["training"] |= {"deepfloyd_validation_stage1_model": str(models / "deepfloyd"),
                           # short: 4 steps, one validation image, drawn through stage I while training too
                           "max_train_steps": 4, "checkpointing_steps": 2, "validation_steps": 4,
                           "eval_steps_interval": 4, "num_validation_images": 1}
    results = whole_flow_then_cached(RunConfig.model_validate(values), "deepfloyd-ii")

    store = ArtifactStore(config.training.resolved_storage_root)
    evaluate = f"evaluate/{results['evaluate']['key']}"
    plan = store.read_json(f"{evaluate}/run.json")["plan"]
    assert plan["prompts"] == list(config.training.validation_prompts) and not plan["sources"]  # drawn: no dataset images
    assert "source_scale" not in plan
    assert results["evaluate"]["counts"]["images"] == 3  # base, the step-2 checkpoint, final
    train = f"train/{results['train']['key']}"
    assert store.read_json(f"{train}/monitor/step-00000004/result.json")["images"]  # the monitor drew through it
