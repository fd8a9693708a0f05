"""SimpleTuner's model_flavour: the hub id it stands for when no model path is given, never downloaded."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dreamcore.config import TrainingConfig
from dreamcore.models import local_model_folder


@pytest.mark.parametrize(("values", "model"), [
    ({"model_family": "flux"}, "black-forest-labs/flux.1-krea-dev"),  # the family's default flavour (krea)
    ({"model_family": "flux", "model_flavour": "schnell"}, "black-forest-labs/flux.1-schnell"),
    ({"model_family": "sdxl", "model_flavour": "refiner-1.0"}, "stabilityai/stable-diffusion-xl-refiner-1.0"),
    ({"model_family": "sd1x", "model_flavour": "1.5"}, "stable-diffusion-v1-5/stable-diffusion-v1-5"),
    ({"model_family": "sd3", "model_flavour": "large"}, "stabilityai/stable-diffusion-3.5-large"),
    ({"model_family": "flux", "model_flavour": "schnell", "pretrained_model_name_or_path": "/models/mine"},
     "/models/mine"),  # a path wins, as in SimpleTuner
    ({"model_family": "sdxl", "model_flavour": "base-1.0", "pretrained_model_name_or_path": "/models/xl"},
     "/models/xl"),
])
def test_flavour_resolves_to_the_hub_id_simpletuner_uses(values, model):
    assert TrainingConfig(**values).pretrained_model_name_or_path == model


def test_unknown_flavours_are_refused_naming_the_choices():
    with pytest.raises(ValidationError, match="model_flavour 'dev' is not a flavour of model_family 'sd3'; "
                                              "flavours: medium, large"):
        TrainingConfig(model_family="sd3", model_flavour="dev")
    with pytest.raises(ValidationError, match="knows no hub ids for model_family 'legacy'"):
        TrainingConfig(model_family="legacy", model_flavour="1.5")


def test_unet_families_do_not_pick_a_model_when_none_is_given():
    """A deliberate difference (dreamcore.config.defaults): SimpleTuner would train its default flavour."""
    assert TrainingConfig(model_family="sdxl").pretrained_model_name_or_path is None


def test_a_flavour_that_is_not_cached_is_a_clear_error_and_nothing_is_downloaded(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    model = TrainingConfig(model_family="flux", model_flavour="schnell").pretrained_model_name_or_path
    with pytest.raises(FileNotFoundError, match="black-forest-labs/flux.1-schnell is not in the local Hugging Face cache"):
        local_model_folder(model)
    assert not any(tmp_path.iterdir())
