"""DeepFloyd IF stage II's validation and class images draw from prompts through a stage I model when the config
names one: stage I draws at a quarter of the size, stage II upscales it with the same prompt and generator. Without
one, validation upscales dataset images (tests/flows/test_deepfloyd_flow.py) and class images are refused by key.
Trained weights draw with a fixed variance, as diffusers' IF training validates."""

from __future__ import annotations

import pytest
import torch

from dreamcore.config import RunConfig, TrainingConfig
from dreamcore.drawing.cascade import UpscalingCascade, with_first_stage
from dreamcore.drawing.pipelines import fixed_variance
from dreamcore.evaluate.plans import validation_plan_for
from dreamcore.evaluate.validation import generate_images
from dreamcore.models import family_named, load_pipeline
from dreamcore.regularise.generate import class_image_plan


def _run(training: TrainingConfig) -> RunConfig:
    return RunConfig(training=training, datasets=[{"id": "subject", "instance_data_dir": "unread"}])


def _stage_two_config(tiny_models, **values) -> TrainingConfig:
    return TrainingConfig(model_family="deepfloyd", pretrained_model_name_or_path=str(tiny_models["deepfloyd-ii"]),
                          validation_prompt="a photo of sks toy", validation_resolution=64, num_validation_images=1,
                          validation_num_inference_steps=2, validation_guidance=1.0, **values)


def test_validation_upscales_what_stage_one_draws_from_the_prompt(tiny_models, tmp_path) -> None:
    config = _stage_two_config(tiny_models, deepfloyd_validation_stage1_model=str(tiny_models["deepfloyd"]))
    family = family_named("deepfloyd-ii")
    plan = validation_plan_for(_run(config), None, family)  # no dataset read
    assert plan.prompts == ("a photo of sks toy",) and not plan.sources and plan.source_scale == 1
    upscaler = load_pipeline(tiny_models["deepfloyd-ii"])
    pipe = with_first_stage(upscaler, config, family, "cpu")
    assert isinstance(pipe, UpscalingCascade) and pipe.unet is upscaler.unet
    (drawn,) = generate_images(pipe, plan)
    assert drawn.image.size == (64, 64)

    # By hand: stage I at 16 px, then stage II on its output with the same generator.
    generator = torch.Generator().manual_seed(plan.seeds[0])
    options = dict(prompt=plan.prompts[0], negative_prompt=None, num_inference_steps=2, guidance_scale=1.0,
                   generator=generator)
    low = pipe.first_stage(**options, width=16, height=16, output_type="pt").images
    assert low.shape[-2:] == (16, 16)
    by_hand = upscaler(image=low, width=64, height=64, **options).images[0]
    assert list(drawn.image.getdata()) == list(by_hand.getdata())


def test_an_upscaler_named_as_stage_one_is_refused_by_key(tiny_models) -> None:
    config = _stage_two_config(tiny_models, deepfloyd_validation_stage1_model=str(tiny_models["deepfloyd-ii"]))
    with pytest.raises(ValueError, match="deepfloyd_validation_stage1_model .*cannot draw from a prompt"):
        with_first_stage(object(), config, family_named("deepfloyd-ii"), "cpu")


def test_class_images_need_a_stage_one_model_and_are_keyed_by_both(tiny_models) -> None:
    options = {"prompt": "a photo of a toy", "count": 2}
    refused = _run(_stage_two_config(tiny_models, class_images=options))
    with pytest.raises(ValueError, match="class_images.model .*cannot draw class images from a prompt"):
        class_image_plan(refused)
    chained = _run(_stage_two_config(tiny_models, class_images=options | {"model": str(tiny_models["deepfloyd"])}))
    plan = class_image_plan(chained)
    assert plan.upscaler == str(tiny_models["deepfloyd-ii"]) and plan.family == "deepfloyd"
    stage_one_alone = _run(TrainingConfig(model_family="deepfloyd", class_images=options,
                                          pretrained_model_name_or_path=str(tiny_models["deepfloyd"])))
    assert class_image_plan(stage_one_alone).key != plan.key  # the upscaler shapes the images: in the key


@pytest.mark.parametrize("kind", ["deepfloyd", "deepfloyd-ii", "sd"])
def test_trained_weights_draw_with_a_fixed_variance_where_the_scheduler_would_read_it(tiny_models, kind) -> None:
    pipe = load_pipeline(tiny_models[kind])
    scheduler = pipe.scheduler
    with fixed_variance(pipe) as ready:
        if kind != "sd":  # both IF stages: learned_range: the untrained variance half is not read
            assert ready.scheduler.config.variance_type == "fixed_small"
            assert {k: v for k, v in ready.scheduler.config.items() if k != "variance_type"} == \
                   {k: v for k, v in scheduler.config.items() if k != "variance_type"}
        else:
            assert ready.scheduler is scheduler
    assert pipe.scheduler is scheduler
