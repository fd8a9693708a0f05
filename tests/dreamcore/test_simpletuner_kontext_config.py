"""A SimpleTuner-style Flux Kontext config, written like its published quickstart (FLUX_KONTEXT.md: model_flavour
kontext, an edit dataset whose conditioning_data lists a reference dataset with conditioning_type reference_strict, no
dataset_type and "caption_strategy": null), passes `dreamcore config check` and trains on the tiny Kontext; and
`dreamcore demo --family kontext` writes such a project."""

from __future__ import annotations

import json
from pathlib import Path

from dreamcore.cli import main
from dreamcore.config import load_run_config
from dreamcore.data.demo import write_demo_dataset, write_demo_references
from dreamcore.models import detect_family


def test_config_check_then_train(tmp_path, capsys, tiny_models) -> None:
    data = write_demo_dataset(tmp_path / "data", n_images=4, include_masks=False)
    backend = [
        {"id": "my-edited-images", "type": "local", "cache_dir_vae": str(tmp_path / "cache/vae/kontext/edited-images"),
         "instance_data_dir": str(data.images_dir), "conditioning_data": ["my-reference-images"], "resolution": 64,
         "resolution_type": "pixel", "caption_strategy": "textfile"},
        {"id": "my-reference-images", "type": "local", "cache_dir_vae": str(tmp_path / "cache/vae/kontext/ref-images"),
         "instance_data_dir": str(write_demo_references(data)), "conditioning_type": "reference_strict",
         "resolution": 64, "resolution_type": "pixel", "caption_strategy": None},
        {"id": "text-embeds", "type": "local", "dataset_type": "text_embeds", "default": True},
    ]
    (tmp_path / "multidatabackend.json").write_text(json.dumps(backend, indent=2))
    config = {
        "model_family": "flux", "model_flavour": "kontext", "model_type": "lora", "gradient_checkpointing": True,
        "lora_rank": 4, "learning_rate": 1e-5, "max_train_steps": 2, "validation_guidance": 2.5,
        "validation_resolution": "64x64", "validation_num_inference_steps": 2, "validation_steps": 2,
        "num_validation_images": 1, "tokenizer_max_length": 64,
        # the tiny model, a few steps on the CPU
        "pretrained_model_name_or_path": str(tiny_models["kontext"]), "output_dir": str(tmp_path / "output"),
        "data_backend_config": "multidatabackend.json", "train_batch_size": 1, "mixed_precision": "no",
    }
    (tmp_path / "config.json").write_text(json.dumps(config, indent=2))
    assert main(["config", "check", str(tmp_path / "config.json")]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["training"]["model_flavour"] == "kontext"
    references = next(d for d in resolved["datasets"] if d["id"] == "my-reference-images")
    assert references["dataset_type"] == "conditioning" and references["conditioning_type"] == "reference_strict"
    assert main(["run", str(tmp_path / "config.json"), "--stage", "ingest"]) == 0
    capsys.readouterr()
    assert main(["run", str(tmp_path / "config.json"), "--stage", "cache"]) == 0
    cached = json.loads(capsys.readouterr().out)["vae_cache"]["my-edited-images"]
    assert cached["encoded"] == 8  # 4 edit images and their 4 references, in the edit dataset's cache_dir_vae
    assert main(["run", str(tmp_path / "config.json"), "--stage", "train"]) == 0
    trained = json.loads(capsys.readouterr().out)["train"]
    assert trained["details"]["family"] == "kontext" and trained["counts"]["steps"] == 2


def test_demo_writes_a_kontext_project_with_paired_references(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--workdir", str(tmp_path), "--family", "kontext", "--no-run"]) == 0
    config = load_run_config(tmp_path / "config.json")
    assert detect_family(config.training.pretrained_model_name_or_path).name == "kontext"
    subject = config.dataset("subject")
    assert [r.id for r in config.reference_datasets(subject)] == ["subject-references"]
    assert config.mask_dataset(subject).id == "subject-masks"
    references = Path(config.dataset("subject-references").instance_data_dir)
    assert sorted(p.stem for p in references.iterdir()) == sorted(
        p.stem for p in Path(subject.instance_data_dir).iterdir() if p.suffix != ".txt")
