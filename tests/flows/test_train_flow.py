"""The train flow: trains and exports; a rerun after a crash resumes from the newest checkpoint."""

from __future__ import annotations

import pytest

from dreamcore.pipeline import training
from dreamcore.storage import ArtifactStore
from flows.train import train_flow
from tests.training_fault import with_training_fault

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_flow_resumes_a_crashed_training_and_then_skips_it(cached_demo, monkeypatch, tmp_path):
    config, vae, text = cached_demo
    fault = tmp_path / "fault"
    fault.write_text("2")  # the first attempt dies after its step-2 checkpoint
    monkeypatch.setattr(training, "train_stage", with_training_fault(training.train_stage, fault))
    crashed = train_flow(config, vae, text, return_state=True)
    assert crashed.is_failed() and "on purpose" in str(crashed.result(raise_on_failure=False))
    assert not fault.exists()  # a one-shot fault

    result = train_flow(config, vae, text)
    store = ArtifactStore(config.training.resolved_storage_root)
    report = store.read_json(f"train/{result.key}/report.json")
    assert report["resumed_from"] == 2 and report["steps"] == 4
    assert any(e["regularisation_loss"] is not None for e in report["history"])
    assert store.exists(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors")
    assert train_flow(config, vae, text) == result
