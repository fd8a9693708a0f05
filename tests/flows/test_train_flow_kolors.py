"""The train flow on the tiny Kolors (and Qwen-Image, Chroma, Lumina2, Z-Image, Flux.2): killed after its step-2
checkpoint (tests/training_fault.py), the rerun resumes there and ends exactly where an uninterrupted training ends."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from dreamcore.pipeline import training
from dreamcore.storage import ArtifactStore
from flows.train import train_flow
from tasks.results import RESULTS_FOLDER
from tests.training_fault import with_training_fault

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.mark.parametrize("cached_demo", ["kolors", "qwen_image", "chroma", "lumina2", "z_image", "flux2"], indirect=True)
def test_kolors_training_killed_after_a_checkpoint_resumes_exactly(cached_demo, monkeypatch, tmp_path):
    config = cached_demo[0]
    killed_then_resumed_exactly(cached_demo, monkeypatch, tmp_path, config.training.model_family)


def killed_then_resumed_exactly(cached_demo, monkeypatch, tmp_path, family: str, on_straight=None) -> None:
    """Train the cached demo straight; train it again killed after its step-2 checkpoint, then rerun: it resumes
    there and ends with the straight run's losses and LoRA. `on_straight(config, export folder)`: a look at the
    straight run's diffusers export."""
    import torch

    config, vae, text = cached_demo
    store = ArtifactStore(config.training.resolved_storage_root)
    straight = train_flow(config, vae, text)
    straight_lora = load_file(store.path(f"train/{straight.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    straight_report = store.read_json(f"train/{straight.key}/report.json")
    if on_straight is not None:
        on_straight(config, store.path(f"train/{straight.key}/export/diffusers"))
    store.remove(f"train/{straight.key}")  # the same key trains again (its Prefect result too), killed this time
    store.remove(RESULTS_FOLDER)

    fault = tmp_path / "fault"
    fault.write_text("2")  # the first attempt dies after its step-2 checkpoint
    monkeypatch.setattr(training, "train_stage", with_training_fault(training.train_stage, fault))
    crashed = train_flow(config, vae, text, return_state=True)
    assert crashed.is_failed() and "on purpose" in str(crashed.result(raise_on_failure=False))

    resumed = train_flow(config, vae, text)
    assert resumed.key == straight.key and resumed.details["family"] == family
    report = store.read_json(f"train/{resumed.key}/report.json")
    assert report["resumed_from"] == 2 and report["steps"] == 4
    assert [e["loss"] for e in report["history"]] == pytest.approx([e["loss"] for e in straight_report["history"]])
    lora = load_file(store.path(f"train/{resumed.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    assert lora.keys() == straight_lora.keys()
    assert all(torch.allclose(lora[name], straight_lora[name], atol=1e-6) for name in lora)
