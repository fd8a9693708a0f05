"""validation_resolution lists (every prompt and seed drawn at each size) and validation_guidance_rescale
(passed to pipelines that take it, refused by key for families whose pipeline has none)."""

from __future__ import annotations

import functools

import pytest
import torch
from pydantic import ValidationError

from dreamcore.config import TrainingConfig
from dreamcore.evaluate.validation import ValidationPlan, generate_images
from dreamcore.models import detect_family, load_pipeline


def _config(model, family: str = "sd1x", **overrides) -> TrainingConfig:
    values = dict(pretrained_model_name_or_path=str(model), model_family=family, mixed_precision="no",
                  optimizer="adamw", validation_prompt=["sks toy", "a red car"], validation_num_inference_steps=2,
                  num_validation_images=1, validation_seed=3)
    return TrainingConfig(**(values | overrides))


def test_single_number_and_lists_parse_as_simpletuner_writes_them(tiny_models):
    assert _config(tiny_models["sd"], validation_resolution=512).validation_sizes() == [(512, 512)]
    assert _config(tiny_models["sd"], validation_resolution="512").validation_sizes() == [(512, 512)]
    both = _config(tiny_models["sd"], validation_resolution="1024x1024,1280x768")
    assert both.validation_sizes() == [(1024, 1024), (1280, 768)] and both.validation_size() == (1024, 1024)
    with pytest.raises(ValidationError, match="comma-separated list"):
        _config(tiny_models["sd"], validation_resolution="1024x1024,big")


def test_every_prompt_and_seed_is_drawn_at_each_listed_size(tiny_models):
    config = _config(tiny_models["sd"], validation_resolution="64x64,96x64")
    plan = ValidationPlan.from_config(config)
    assert plan.prompts == ("sks toy", "sks toy", "a red car", "a red car")
    assert plan.sizes == ((64, 64), (96, 64), (64, 64), (96, 64))
    assert ValidationPlan.from_dict(plan.as_dict()) == plan
    images = generate_images(load_pipeline(tiny_models["sd"]), plan)
    assert [i.image.size for i in images] == [(64, 64), (96, 64), (64, 64), (96, 64)]
    assert len({i.file_name for i in images}) == 4
    assert plan.column_label(1, 3) == "p1 seed 3 96x64"
    # One size keeps the plan (and its evaluate key) as before.
    single = ValidationPlan.from_config(_config(tiny_models["sd"], validation_resolution=64))
    assert single.sizes == () and "sizes" not in single.as_dict() and "guidance_rescale" not in single.as_dict()


def test_guidance_rescale_reaches_the_pipeline(tiny_models):
    pipe = load_pipeline(tiny_models["sd"])
    seen = []
    original = pipe.__class__.__call__

    @functools.wraps(original)  # keeps the signature the plan inspects
    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("guidance_rescale"))
        return original(self, *args, **kwargs)

    plain = ValidationPlan.from_config(_config(tiny_models["sd"], validation_resolution=64, validation_prompt="x"))
    rescaled = ValidationPlan.from_config(_config(tiny_models["sd"], validation_resolution=64, validation_prompt="x",
                                                  validation_guidance_rescale=0.7))
    pipe.__class__.__call__ = spy
    try:
        a = generate_images(pipe, plain)[0].image
        b = generate_images(pipe, rescaled)[0].image
    finally:
        pipe.__class__.__call__ = original
    assert seen == [None, 0.7]
    assert not torch.equal(torch.tensor(list(a.getdata())), torch.tensor(list(b.getdata())))


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_guidance_rescale_is_refused_for_families_without_it(tiny_models, kind):
    config = _config(tiny_models[kind], kind, validation_guidance_rescale=0.7)
    family = detect_family(tiny_models[kind])
    with pytest.raises(ValueError, match="validation_guidance_rescale is 0.7 .* takes no guidance_rescale"):
        family.check_config(config)
    family.check_config(_config(tiny_models[kind], kind))  # 0: nothing to refuse
