"""The DreamBooth prompt protocol: the data file, {token}/{class} expansion, config selection and refusals."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dreamcore.config import TrainingConfig
from dreamcore.evaluate.protocol import expand, prompt_set_names, prompt_templates, protocol_from_config

_PROTOCOL = {"pretrained_model_name_or_path": "/models/sd", "evaluation_dino_model": "/models/dino",
             "pretrained_evaluation_model_name_or_path": "/models/clip", "evaluation_token": "sks",
             "evaluation_class": "dog"}


def test_the_file_holds_the_papers_25_prompts_per_subject_kind() -> None:
    assert prompt_set_names() == ["dreambooth_live", "dreambooth_object"]
    objects, live = prompt_templates("dreambooth_object"), prompt_templates("dreambooth_live")
    assert len(objects) == len(set(objects)) == 25 and len(live) == len(set(live)) == 25
    assert all("{token} {class}" in t for t in objects + live)
    assert objects[:10] == live[:10] and objects[-5:] == live[-5:]  # contexts and properties are shared
    assert "a {token} {class} wearing a santa hat" in live and "a {token} {class} wearing a santa hat" not in objects
    assert "a {token} {class} floating in an ocean of milk" in objects
    assert prompt_templates("none") == []
    quick = prompt_templates("dreambooth_live", quick=True)
    assert len(quick) == 5 and set(quick) <= set(live)


def test_expand_fills_token_and_class() -> None:
    assert expand("a {token} {class} in the snow", "sks", "dog") == "a sks dog in the snow"
    assert expand("a cube shaped {token} {class}", "zwx", "teddy bear") == "a cube shaped zwx teddy bear"


def test_config_selects_the_set_adds_own_prompts_and_fixes_the_seeds() -> None:
    config = TrainingConfig(**_PROTOCOL, evaluation_prompt_set="dreambooth_live", validation_seed=7,
                            evaluation_images_per_prompt=3, evaluation_prompt=["{class} and {token} at night"])
    protocol = protocol_from_config(config)
    assert len(protocol.prompts) == 26 and protocol.prompts[0] == "a sks dog in the jungle"
    assert protocol.prompts[-1] == "dog and sks at night"
    assert protocol.class_prompt == "a dog" and protocol.seeds == (7, 8, 9) and protocol.size == 27 * 3
    quick = protocol_from_config(config, quick=True)
    assert len(quick.prompts) == 6 and quick.prompts[-1] == "dog and sks at night"
    own_only = TrainingConfig(**_PROTOCOL, evaluation_prompt="a {token} {class}")
    assert protocol_from_config(own_only).prompts == ("a sks dog",)
    assert protocol_from_config(TrainingConfig(pretrained_model_name_or_path="/models/sd")) is None


def test_the_protocol_refuses_missing_models_and_unknown_placeholders() -> None:
    with pytest.raises(ValidationError, match="needs evaluation_dino_model, evaluation_class"):
        TrainingConfig(**{**_PROTOCOL, "evaluation_dino_model": None, "evaluation_class": None},
                       evaluation_prompt_set="dreambooth_object")
    with pytest.raises(ValidationError, match=r"unknown placeholder\(s\) \['name'\]"):
        TrainingConfig(**_PROTOCOL, evaluation_prompt="a photo of {name}")
    with pytest.raises(ValidationError, match="evaluation_prompt_set"):
        TrainingConfig(**_PROTOCOL, evaluation_prompt_set="dreambooth_people")


def test_run_quick_takes_the_quick_subset() -> None:
    from dreamcore.cli import with_quick_evaluation
    from dreamcore.config import RunConfig

    config = RunConfig(training={**_PROTOCOL, "evaluation_prompt_set": "dreambooth_object"},
                       datasets=[{"id": "subject", "instance_data_dir": "/data/subject"}])
    quick = with_quick_evaluation(config, True)
    assert len(protocol_from_config(quick.training).prompts) == 5
    assert len(protocol_from_config(config.training).prompts) == 25 and with_quick_evaluation(config, False) is config
