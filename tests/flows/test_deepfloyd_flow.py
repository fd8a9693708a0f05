"""DeepFloyd IF stage I through the train flow: a training killed after its step-2 checkpoint resumes from it on
the rerun and ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.cache.stages import run_cache
from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.pipeline import run_ingest, training
from dreamcore.storage import ArtifactStore, StageResult
from flows.train import train_flow
from tests.training_fault import with_training_fault

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _cached_demo(folder):
    config = load_run_config(write_demo_project(folder, family="deepfloyd"))
    trained = config.training.model_copy(update={"max_train_steps": 4, "checkpointing_steps": 2})
    config = config.model_copy(update={"training": trained})
    store = ArtifactStore(config.training.resolved_storage_root)
    run_ingest(config, store)
    caches = run_cache(config, store)
    vae = {dataset_id: StageResult.model_validate(r) for dataset_id, r in caches["vae_cache"].items()}
    return config, store, vae, StageResult.model_validate(caches["text_cache"])


def _lora(store, result):
    return load_file(store.path(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors"))


def test_a_killed_training_resumes_exactly(tmp_path, monkeypatch) -> None:
    torch.set_num_threads(1)
    config, store, vae, text = _cached_demo(tmp_path / "straight")
    straight = train_flow(config, vae, text)

    config, store_b, vae, text = _cached_demo(tmp_path / "killed")
    fault = tmp_path / "fault"
    fault.write_text("2")  # the first attempt dies after its step-2 checkpoint
    monkeypatch.setattr(training, "train_stage", with_training_fault(training.train_stage, fault))
    crashed = train_flow(config, vae, text, return_state=True)
    assert crashed.is_failed() and not fault.exists()
    resumed = train_flow(config, vae, text)

    report = store_b.read_json(f"train/{resumed.key}/report.json")
    assert report["resumed_from"] == 2 and report["steps"] == 4 and resumed.details["family"] == "deepfloyd"
    expected, got = _lora(store, straight), _lora(store_b, resumed)
    assert expected.keys() == got.keys()
    assert all(torch.allclose(expected[k], got[k], atol=1e-6) for k in expected)
    straight_losses = [e["loss"] for e in store.read_json(f"train/{straight.key}/report.json")["history"]]
    assert [e["loss"] for e in report["history"]] == pytest.approx(straight_losses)
