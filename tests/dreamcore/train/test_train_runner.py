"""`dreamcore run --stage train` on the demo project: real ingest and caches in, trained LoRA out."""

from __future__ import annotations

import json

import pytest

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.pipeline import run_stage_locally
from dreamcore.storage import ArtifactStore


@pytest.mark.slow
def test_train_stage_runs_from_the_demo_caches_and_then_skips(tmp_path):
    config_path = write_demo_project(tmp_path / "demo")
    document = json.loads(config_path.read_text())
    document["--max_train_steps"] = 3
    document["--checkpointing_steps"] = 2
    config_path.write_text(json.dumps(document))
    config = load_run_config(config_path)
    run_stage_locally(config, "ingest")
    first = run_stage_locally(config, "train")["train"]
    store = ArtifactStore(config.training.resolved_storage_root)
    report = store.read_json(f"train/{first['key']}/report.json")
    assert report["steps"] == 3 and report["wrapped_modules"] == 32
    history = report["history"]
    assert any(e["regularisation_loss"] is not None for e in history)  # the demo's class images took part
    # the demo's subject repeats 4 times: keyed beside the caches, which do not hold it
    assert set(first["details"]["upstream"]) == {"vae_cache/subject", "vae_cache/regularisation", "text_cache",
                                                 "datasets/repeats"}
    again = run_stage_locally(config, "train")["train"]
    assert first["trained"] and again == first | {"trained": False}
