"""`dreamcore masks generate` and `dreamcore run --stage masks` from SimpleTuner-style files."""

from __future__ import annotations

import json

import pytest

from dreamcore.cli import main
from dreamcore.config import ConfigError, load_config
from dreamcore.data.demo import write_demo_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_config(tmp_path, tiny_models, **mask_options):
    demo = write_demo_dataset(tmp_path / "demo", n_images=2)
    datasets = [{"id": "subject", "instance_data_dir": str(demo.images_dir), "caption_strategy": "textfile"}]
    (tmp_path / "multidatabackend.json").write_text(json.dumps(datasets))
    config = {
        "--pretrained_model_name_or_path": str(tiny_models["sd"]),
        "--storage_root": str(tmp_path / "artifacts"),
        "--data_backend_config": "multidatabackend.json",
        "--mask_generation": {"dataset": "subject", "prompt": "toy", "model": str(tiny_models["clipseg"])}
        | mask_options,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_masks_generate_prints_the_dataset_entry_and_run_stage_reuses_it(tiny_models, tmp_path, capsys) -> None:
    path = write_config(tmp_path, tiny_models)
    assert main(["masks", "generate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "dataset 'subject': 2 masks (generate)" in out
    entry = json.loads(out[out.index("{") :])
    assert entry["id"] == "subject-masks" and entry["conditioning_type"] == "mask"

    assert main(["run", str(path), "--stage", "masks"]) == 0
    stage = json.loads(capsys.readouterr().out)
    assert stage["subject"]["generated"] == 0 and stage["subject"]["details"]["data_uri"] == entry["instance_data_dir"]


def test_bad_mask_option_is_named_with_its_file(tiny_models, tmp_path) -> None:
    path = write_config(tmp_path, tiny_models, threshold=1.5)
    with pytest.raises(ConfigError, match=r"key 'mask_generation.threshold'.*1.5"):
        load_config(path)
