"""SimpleTuner's published example configs (tests/fixtures/simpletuner/examples/st-*.json) run as published on a
tiny model: shared by the family tests that check their family's example passes `config check` and trains."""

from __future__ import annotations

import json
from pathlib import Path

from dreamcore.cli import main
from dreamcore.data.demo import write_demo_dataset

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "simpletuner" / "examples"


def check_then_train(example: Path | dict, model: Path, root: Path, capsys, **overrides) -> tuple[dict, dict]:
    """The example as published (its file, or its keys as a test adapted them), on the tiny `model` and a few steps
    at 64 px on the CPU (and `overrides`), under `root`: `config check` passes, ingest and train run; (the resolved
    training config, the train result)."""
    write_subject_backend(root)
    published = json.loads(example.read_text()) if isinstance(example, Path) else example
    config = published | {
        "pretrained_model_name_or_path": str(model), "output_dir": str(root / "output"),
        "data_backend_config": "multidatabackend.json", "max_train_steps": 3, "train_batch_size": 2, "lora_rank": 4,
        "lora_alpha": 4, "mixed_precision": "no", "validation_resolution": "64x64",
    } | overrides
    (root / "config.json").write_text(json.dumps(config, indent=2))
    assert main(["config", "check", str(root / "config.json")]) == 0
    resolved = json.loads(capsys.readouterr().out)["training"]
    assert main(["run", str(root / "config.json"), "--stage", "ingest"]) == 0
    capsys.readouterr()
    assert main(["run", str(root / "config.json"), "--stage", "train"]) == 0
    trained = json.loads(capsys.readouterr().out)["train"]
    assert trained["counts"]["steps"] == 3
    return resolved, trained


def write_subject_backend(root: Path) -> None:
    """root/multidatabackend.json: 4 demo images (root/data) at 64 px with caption files, and the text embeds."""
    data = write_demo_dataset(root / "data", n_images=4)
    backend = [
        {"id": "subject", "type": "local", "instance_data_dir": str(data.images_dir), "caption_strategy": "textfile",
         "resolution": 64, "resolution_type": "pixel", "minimum_image_size": 64, "repeats": 1},
        {"id": "text-embeds", "type": "local", "dataset_type": "text_embeds", "default": True},
    ]
    (root / "multidatabackend.json").write_text(json.dumps(backend, indent=2))
