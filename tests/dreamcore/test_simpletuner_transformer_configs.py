"""SimpleTuner-style SD3 and Flux configs (`--key` spelling, their flow-matching and guidance keys, an
int8-quanto base) pass `dreamcore config check` and train with `dreamcore run --stage ingest`, then `--stage train`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dreamcore.cli import main
from dreamcore.models import write_tiny_models
from tests.dreamcore.published_examples import write_subject_backend

FAMILY_KEYS = {
    "flux": {"--model_family": "flux", "--flow_schedule_shift": 1.0, "--flux_guidance_mode": "constant",
             "--flux_guidance_value": 1.0, "--flux_lora_target": "all"},
    "sd3": {"--model_family": "sd3", "--flow_schedule_auto_shift": True, "--flow_use_uniform_schedule": True},
    "deepfloyd": {"--model_family": "deepfloyd", "--model_flavour": "i-medium-400m"},
}


def _simpletuner_project(root: Path, family: str, models: dict[str, Path]) -> Path:
    write_subject_backend(root)
    config = {
        "--pretrained_model_name_or_path": str(models[family]), "--output_dir": str(root / "output"),
        "--data_backend_config": "multidatabackend.json", "--model_type": "lora", "--lora_rank": 4,
        "--base_model_precision": "int8-quanto", "--max_train_steps": 3, "--train_batch_size": 2,
        "--learning_rate": 1e-3, "--mixed_precision": "no", "--tokenizer_max_length": 16,
        "--validation_disable": True, "--checkpointing_steps": 100, "--seed": 7,
        **FAMILY_KEYS[family],
    }
    (root / "config.json").write_text(json.dumps(config, indent=2))
    return root / "config.json"


@pytest.mark.parametrize("family", sorted(FAMILY_KEYS))
def test_config_check_then_train(tmp_path, capsys, family) -> None:
    models = write_tiny_models(tmp_path / "models")
    config = _simpletuner_project(tmp_path / "project", family, models)
    assert main(["config", "check", str(config)]) == 0
    resolved = json.loads(capsys.readouterr().out)["training"]
    for key, value in FAMILY_KEYS[family].items():
        assert resolved[key.lstrip("-")] == value
    assert main(["run", str(config), "--stage", "ingest"]) == 0
    capsys.readouterr()
    assert main(["run", str(config), "--stage", "train"]) == 0
    trained = json.loads(capsys.readouterr().out)["train"]
    assert trained["details"]["family"] == family and trained["counts"]["steps"] == 3
    assert "diffusers_lora" in trained["details"]["exports"]
