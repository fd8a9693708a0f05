"""`dreamcore class-images generate` and `dreamcore run --stage class_images`."""

from __future__ import annotations

import json

import pytest

from dreamcore.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_class_images_generate_then_run_stage_generates_nothing(tiny_models, tmp_path, capsys) -> None:
    datasets = [{"id": "subject", "instance_data_dir": str(tmp_path), "resolution": 64}]
    (tmp_path / "multidatabackend.json").write_text(json.dumps(datasets))
    config = {
        "pretrained_model_name_or_path": str(tiny_models["sd"]),
        "storage_root": str(tmp_path / "artifacts"),
        "mixed_precision": "no",
        "data_backend_config": "multidatabackend.json",
        "class_images": {"prompt": "a photo of a toy", "count": 2, "num_inference_steps": 2},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert main(["class-images", "generate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "dataset 'regularisation': 2 class images (2 generated now)" in out
    entry = json.loads(out[out.index("{") :])
    assert entry["is_regularisation_data"] is True and entry["caption_strategy"] == "textfile"

    assert main(["run", str(path), "--stage", "class_images"]) == 0
    stage = json.loads(capsys.readouterr().out)
    assert stage["regularisation"]["generated"] == [] and stage["regularisation"]["counts"] == {"images": 2}
