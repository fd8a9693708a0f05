"""SimpleTuner's saved file shapes (its web-UI store format), and errors that name the key: every shape is read
as SimpleTuner reads it or refused with one error naming it, never accepted as an empty config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dreamcore.config import ConfigError, load_config

FLUX = {"--model_family": "flux", "--learning_rate": 0.0002, "--lora_rank": 8}
DATASETS = [{"id": "subject", "type": "local", "instance_data_dir": "/data/subject", "caption_strategy": "filename"}]


def _write(tmp_path: Path, document, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def _problem(path: Path) -> tuple[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    return problem.key, problem.message


def test_the_store_format_is_unwrapped(tmp_path):
    path = _write(tmp_path, {"_metadata": {"name": "mine", "model_family": "flux"}, "config": FLUX})
    loaded = load_config(path)
    assert (loaded.training.model_family, loaded.training.lora_rank, loaded.training.learning_rate) == ("flux", 8, 2e-4)
    assert loaded.warnings == []


def test_the_flattened_store_format_is_the_keys_beside_metadata(tmp_path):
    loaded = load_config(_write(tmp_path, {"_metadata": {"name": "mine"}, **FLUX}))
    assert loaded.training.model_family == "flux" and loaded.warnings == []


def test_a_dataloader_store_file_is_its_datasets(tmp_path):
    backend = _write(tmp_path, {"_metadata": {"name": "data"}, "datasets": DATASETS}, "multidatabackend.json")
    config = _write(tmp_path, {"_metadata": {"name": "mine"}, "config": {**FLUX, "--data_backend_config": str(backend)}})
    loaded = load_config(config)
    assert [d.id for d in loaded.datasets] == ["subject"]


@pytest.mark.parametrize(("document", "key", "words"), [
    ({"_metadata": {}, "config": ["--lora_rank", 8]}, "config", "store file whose 'config' is a JSON list"),
    ({"_metadata": {}, "datasets": {"id": "x"}}, "datasets", "store file whose 'datasets' is a JSON object"),
    ({"_metadata": {"name": "empty"}}, "_metadata", "store file with no config keys"),
    ({"config": FLUX}, "config", "a nested 'config' object is not a shape dreamcore reads"),
    ({"datasets": DATASETS}, "datasets", "a nested 'datasets' list is not a shape dreamcore reads"),
    ("flux", "<root>", "a JSON string is not a config"),
    (12, "<root>", "a JSON number is not a config"),
    (None, "<root>", "a JSON null is not a config"),
], ids=["config-list", "datasets-object", "metadata-only", "config-without-metadata", "datasets-without-metadata",
        "string", "number", "null"])
def test_other_shapes_are_refused_naming_them(tmp_path, document, key, words):
    found_key, message = _problem(_write(tmp_path, document))
    assert found_key == key and words in message


@pytest.mark.parametrize(("typo", "known"), [("lora_rnak", "lora_rank"), ("learning_rte", "learning_rate"),
                                             ("--max_grad_nrom", "max_grad_norm"), ("grad_clip_metod", "grad_clip_method")])
def test_a_key_one_or_two_edits_from_a_known_key_is_an_error(tmp_path, typo, known):
    key, message = _problem(_write(tmp_path, {"--model_family": "sdxl", typo: 1}))
    assert key == typo.removeprefix("--") and message == f"unknown key: did you mean {known!r}?"


def test_a_dataset_key_typo_is_an_error_naming_the_dataset(tmp_path):
    path = _write(tmp_path, [{**DATASETS[0], "resoluton": 512}], "multidatabackend.json")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert (problem.dataset_id, problem.key) == ("subject", "resoluton")
    assert "did you mean 'resolution'?" in problem.message


def test_other_unknown_keys_stay_warnings(tmp_path):
    loaded = load_config(_write(tmp_path, {"--model_family": "sdxl", "--my_team_setting": 1}))
    assert len(loaded.warnings) == 1 and "unknown key 'my_team_setting' ignored" in loaded.warnings[0]


def test_a_missing_data_backend_config_names_the_key_and_the_folders(tmp_path, monkeypatch):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = _write(tmp_path, {"--model_family": "sdxl", "--data_backend_config": "config/multidatabackend.json"})
    key, message = _problem(config)
    assert key == "data_backend_config"
    assert message == (f"file 'config/multidatabackend.json' not found (looked in {elsewhere} and {tmp_path})")
