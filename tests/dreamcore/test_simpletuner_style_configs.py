"""Our own SimpleTuner-style sd3 and flux configs, written like its published examples (grad_clip_method "value",
SimpleTuner's own default, included), pass `config check` unchanged and train on the tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dreamcore.cli import main
from dreamcore.demo import DEMO_T5_TOKENS, write_demo_project

# The keys of SimpleTuner's published sd3/flux peft-lora examples, sized for the tiny models.
EXAMPLE_LIKE = {
    "base_model_precision": "no_change",
    "checkpoint_step_interval": 2,
    "disable_bucket_pruning": True,
    "flow_schedule_shift": 3,
    "grad_clip_method": "value",
    "gradient_checkpointing": True,
    "hub_model_id": "simpletuner-example-peft-lora",
    "learning_rate": 1e-4,
    "lora_alpha": 4,
    "lora_rank": 4,
    "lora_type": "standard",
    "lr_scheduler": "constant",
    "max_train_steps": 2,
    "mixed_precision": "no",
    "model_type": "lora",
    "num_train_epochs": 0,
    "optimizer": "adamw",
    "push_checkpoints_to_hub": False,
    "push_to_hub": False,
    "quantize_via": "cpu",
    "report_to": "none",
    "seed": 42,
    "tracker_project_name": "lora-training",
    "tracker_run_name": "example-training-run",
    "train_batch_size": 1,
    "use_ema": False,
    "vae_batch_size": 1,
    "validation_disable_unconditional": True,
    "validation_guidance": 1.0,
    "validation_guidance_rescale": 0.0,
    "validation_negative_prompt": "ugly, cropped, blurry, low-quality, mediocre average",
    "validation_num_inference_steps": 2,
    "validation_prompt_library": False,
    "validation_resolution": "64x64",
    "validation_seed": 42,
}


@pytest.mark.slow
@pytest.mark.parametrize("family", ["sd3", "flux"])
def test_a_simpletuner_style_config_checks_and_trains(tmp_path: Path, capsys, family: str) -> None:
    demo = json.loads(write_demo_project(tmp_path / "demo", family).read_text())
    config = {**EXAMPLE_LIKE, "model_family": family,
              "pretrained_model_name_or_path": demo["--pretrained_model_name_or_path"],
              "data_backend_config": str(tmp_path / "demo" / "multidatabackend.json"),
              "tokenizer_max_length": DEMO_T5_TOKENS,
              "output_dir": str(tmp_path / "output"), "validation_prompt": demo["--validation_prompt"]}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config, indent=4))
    capsys.readouterr()
    assert main(["config", "check", str(path)]) == 0
    captured = capsys.readouterr()
    assert "error" not in captured.err and "grad_clip_method" not in captured.err
    assert json.loads(captured.out)["training"]["grad_clip_method"] == "value"
    assert main(["run", str(path), "--until", "train"]) == 0
    trained = json.loads(capsys.readouterr().out)["train"]["result"]["train"]
    assert trained["counts"]["steps"] == 2 and trained["details"]["family"] == family
    assert any(Path(trained["details"]["exports"]["diffusers_lora"]).glob("*.safetensors"))
