"""Refiner validation refines seeded-random dataset images (img2img), with aesthetic-score conditioning."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dreamcore.drawing.pipelines import load_validation_pipeline, source_image
from dreamcore.evaluate.plans import refiner_validation_plan, validation_plan_for
from dreamcore.evaluate.validation import ValidationPlan, generate_images
from dreamcore.models import family_named


def test_refiner_plan_picks_subject_images_with_their_captions(make_run, ingest_and_cache, tiny_models):
    config = make_run(str(tiny_models["sdxl-refiner"]), num_validation_images=3, validation_prompt="ignored",
                      validation_seed=11)
    store, *_ = ingest_and_cache(config)
    plan = validation_plan_for(config, store, family_named("sdxl-refiner"))
    assert len(plan.sources) == len(plan.prompts) == 3 and plan.seeds == (11,)
    assert "ignored" not in plan.prompts
    subject = config.dataset("subject").instance_data_dir
    for uri, prompt in zip(plan.sources, plan.prompts):
        assert uri.startswith(subject)  # never the regularisation images
        assert prompt == Path(uri).with_suffix(".txt").read_text().splitlines()[0].strip()
    assert plan.strength == 0.2 and plan.aesthetic_score == 7.0 and plan.negative_aesthetic_score == 2.5
    assert refiner_validation_plan(config, store) == plan  # the same data and seed pick the same images
    base = validation_plan_for(config, store, family_named("sdxl"))
    assert base.prompts == ("ignored",) and base.sources == ()


def test_refiner_validation_refines_the_source_image_with_the_configured_scores(make_run, ingest_and_cache,
                                                                                tiny_models):
    config = make_run(str(tiny_models["sdxl-refiner"]), validation_num_inference_steps=5,
                      refiner_training_strength=0.6, data_aesthetic_score=6.0, refiner_negative_aesthetic_score=1.0)
    store, *_ = ingest_and_cache(config)
    plan = refiner_validation_plan(config, store)
    pipe = load_validation_pipeline(str(tiny_models["sdxl-refiner"]), "cpu")
    ours = np.asarray(generate_images(pipe, plan)[0].image, dtype=np.float32)
    with torch.no_grad():
        direct = pipe(prompt=plan.prompts[0], image=source_image(plan.sources[0], (64, 64)), strength=0.6,
                      num_inference_steps=5, guidance_scale=plan.guidance, aesthetic_score=6.0,
                      negative_aesthetic_score=1.0, generator=torch.Generator("cpu").manual_seed(plan.seeds[0]))
    assert np.array_equal(ours, np.asarray(direct.images[0], dtype=np.float32))
    other_score = np.asarray(generate_images(pipe, replace(plan, negative_aesthetic_score=9.0))[0].image, np.float32)
    assert np.abs(other_score - ours).max() > 0  # the unconditional branch's score is applied
    other_image = replace(plan, sources=(_another(config, plan.sources[0]),))
    assert np.abs(np.asarray(generate_images(pipe, other_image)[0].image, np.float32) - ours).max() > 0


def _another(config, uri: str) -> str:
    images = sorted(p for p in Path(config.dataset("subject").instance_data_dir).iterdir() if p.suffix != ".txt")
    return str(next(p for p in images if str(p) != uri))


def test_a_refiner_plan_without_images_is_refused(tiny_models):
    pipe = load_validation_pipeline(str(tiny_models["sdxl-refiner"]), "cpu")
    plan = ValidationPlan(("a toy",), (0,), None, 2, 5.0, None)
    with pytest.raises(ValueError, match="refining dataset images"):
        generate_images(pipe, plan)


def test_evaluate_stage_of_a_refiner_training_refines_dataset_images(make_run, ingest_and_cache, tiny_models):
    from dreamcore.cache.batches import open_batch_source
    from dreamcore.evaluate.stage import evaluate_stage
    from dreamcore.pipeline import cache_digests
    from dreamcore.train.plan import CacheResults, plan_training
    from dreamcore.train.stage import train_stage

    config = make_run(str(tiny_models["sdxl-refiner"]), max_train_steps=2, checkpointing_steps=2,
                      validation_prompt="ignored", num_validation_images=2, validation_num_inference_steps=3)
    store, vae, text, _ = ingest_and_cache(config)
    trained = train_stage(plan_training(config, cache_digests(CacheResults(vae_cache=vae, text_cache=text), config)), store,
                          open_batch_source(store, config, vae, text),
                          show_progress=False)
    result, _ = evaluate_stage(config, store, trained)
    plan = refiner_validation_plan(config, store)
    assert result.counts["images"] == 2 * 2  # base and final, two dataset images each
    saved = store.read_json(f"evaluate/{result.key}/weights/final/result.json")
    assert [image["prompt"] for image in saved["images"]] == list(plan.prompts)
    assert "ignored" not in plan.prompts
