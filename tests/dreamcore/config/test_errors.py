"""Config errors name the file, dataset id, key, value and allowed values; unknown keys warn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dreamcore.config import ConfigError, load_config


def write(tmp_path: Path, name: str, document) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def dataset(**overrides) -> dict:
    entry = {"id": "subject", "type": "local", "instance_data_dir": "/data/subject", "instance_prompt": "sks dog",
             "caption_strategy": "instanceprompt"}
    entry.update(overrides)
    return entry


def only_problem(error: pytest.ExceptionInfo[ConfigError]):
    assert len(error.value.problems) == 1, error.value.problems
    return error.value.problems[0]


def test_bad_literal_names_file_dataset_key_value_and_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "multidatabackend.json", [dataset(resolution_type="megapixel")])
    with pytest.raises(ConfigError) as error:
        load_config(path)
    problem = only_problem(error)
    assert problem.file == str(path)
    assert problem.dataset_id == "subject"
    assert problem.key == "resolution_type"
    text = str(error.value)
    assert "'megapixel'" in text and "'pixel'" in text and "'area'" in text and "'pixel_area'" in text


def test_bad_training_value_names_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "config.json", {"--base_model_precision": "int9-quanto"})
    with pytest.raises(ConfigError) as error:
        load_config(path)
    problem = only_problem(error)
    assert (problem.file, problem.key) == (str(path), "base_model_precision")
    assert "'int9-quanto'" in str(error.value) and "'int8-quanto'" in str(error.value)


def test_unknown_keys_are_warnings_not_dropped_silently(tmp_path: Path) -> None:
    config = write(tmp_path, "config.json", {"--lora_rank": 4, "--not_a_real_key": 1})
    datasets = write(tmp_path, "datasets.json", [dataset(shiny=True)])
    loaded = load_config(config, datasets)
    assert loaded.training.lora_rank == 4
    assert any("not_a_real_key" in w and "config.json" in w for w in loaded.warnings)
    assert any("'shiny'" in w and "'subject'" in w for w in loaded.warnings)


def test_unknown_conditioning_reference(tmp_path: Path) -> None:
    path = write(tmp_path, "datasets.json", [dataset(conditioning_data="masks-that-do-not-exist")])
    with pytest.raises(ConfigError) as error:
        load_config(path)
    problem = only_problem(error)
    assert (problem.dataset_id, problem.key) == ("subject", "conditioning_data")
    assert "masks-that-do-not-exist" in str(error.value)


def test_conditioning_reference_to_an_image_dataset_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "datasets.json", [dataset(conditioning_data="other"), dataset(id="other")])
    with pytest.raises(ConfigError, match="does not name a conditioning dataset"):
        load_config(path)


def test_two_default_text_embeds(tmp_path: Path) -> None:
    embeds = {"type": "local", "dataset_type": "text_embeds", "default": True, "cache_dir": "/c"}
    path = write(tmp_path, "datasets.json", [dataset(), {"id": "a", **embeds}, {"id": "b", **embeds}])
    with pytest.raises(ConfigError, match="only one text_embeds dataset may be default"):
        load_config(path)


def test_text_embeds_without_default(tmp_path: Path) -> None:
    path = write(tmp_path, "datasets.json", [dataset(), {"id": "a", "dataset_type": "text_embeds", "cache_dir": "/c"}])
    with pytest.raises(ConfigError, match='"default": true'):
        load_config(path)


def test_duplicate_ids(tmp_path: Path) -> None:
    path = write(tmp_path, "datasets.json", [dataset(), dataset()])
    with pytest.raises(ConfigError, match="duplicate dataset id 'subject'"):
        load_config(path)


def test_missing_instance_prompt_for_instanceprompt(tmp_path: Path) -> None:
    path = write(tmp_path, "datasets.json", [dataset(instance_prompt=None)])
    with pytest.raises(ConfigError, match="needs instance_prompt"):
        load_config(path)


def test_face_crop_is_a_clear_not_supported(tmp_path: Path) -> None:
    path = write(tmp_path, "datasets.json", [dataset(crop=True, crop_style="face")])
    with pytest.raises(ConfigError, match="'face' is not supported"):
        load_config(path)


def test_url_needs_fsspec_type(tmp_path: Path) -> None:
    path = write(tmp_path, "datasets.json", [dataset(instance_data_dir="s3://bucket/subject")])
    with pytest.raises(ConfigError, match="set type to 'fsspec'"):
        load_config(path)
    assert load_config(write(tmp_path, "ok.json", [dataset(type="fsspec", instance_data_dir="s3://b/s")])).datasets


def test_both_spellings_of_regularisation(tmp_path: Path) -> None:
    path = write(tmp_path, "datasets.json", [dataset(is_regularization_data=True), dataset(id="b", is_regularisation_data=True)])
    assert [d.is_regularisation_data for d in load_config(path).datasets] == [True, True]


def test_invalid_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"--lora_rank": 4,\n "oops"}')
    with pytest.raises(ConfigError, match=r"config.json: key '<file>': not valid JSON: line 2"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.json")


def test_missing_model_when_running(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, "config.json", {"--lora_rank": 4}), write(tmp_path, "d.json", [dataset()]))
    with pytest.raises(ConfigError, match="pretrained_model_name_or_path"):
        loaded.run_config()


def test_quantised_full_finetune_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "config.json", {"model_type": "full", "base_model_precision": "int8-quanto"})
    with pytest.raises(ConfigError, match="needs model_type 'lora'"):
        load_config(path)


@pytest.mark.parametrize("bad_id", ["../../../somewhere/escape", "a/b", "a\\b", "..", "c:", "x..y"])
def test_a_dataset_id_is_a_name_not_a_path(tmp_path: Path, bad_id: str) -> None:
    path = write(tmp_path, "datasets.json", [dataset(id=bad_id)])
    with pytest.raises(ConfigError) as error:
        load_config(path)
    problem = only_problem(error)
    assert problem.key == "id" and "is a path, not a name" in str(error.value)
    assert len(str(problem).splitlines()) == 1
