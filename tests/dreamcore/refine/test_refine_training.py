"""Refiner training: its timestep range, a LoRA that loads into a stock img2img pipeline, a full fine-tune."""

from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch
from PIL import Image

from dreamcore.cache.batches import open_batch_source
from dreamcore.config import TrainingConfig
from dreamcore.models import family_named
from dreamcore.pipeline import cache_digests
from dreamcore.train.plan import CacheResults, plan_training
from dreamcore.train.stage import train_key, train_stage


def _config(**values) -> TrainingConfig:
    return TrainingConfig(pretrained_model_name_or_path="model", **values)


def training_timestep_range(config: TrainingConfig, family: str, num_train_timesteps: int) -> tuple[int, int]:
    return family_named(family).objective.timestep_range(config, family, num_train_timesteps)


@pytest.mark.parametrize(("family", "values", "expected"), [
    ("sdxl-refiner", {}, (0, 200)),  # detected refiner: the last 20 % by default
    ("sdxl-refiner", {"refiner_training_strength": 0.35}, (0, 350)),
    ("sdxl-refiner", {"sdxl_refiner_uses_full_range": True}, (0, 1000)),
    ("sdxl-refiner", {"refiner_training_invert_schedule": True}, (200, 1000)),
    ("sdxl", {}, (0, 1000)),  # a base trains everywhere
    ("sdxl", {"refiner_training": True, "refiner_training_invert_schedule": True}, (200, 1000)),  # base's share
    ("sd1", {}, (0, 1000)),
])
def test_timestep_range(family, values, expected):
    assert training_timestep_range(_config(**values), family, 1000) == expected


def test_timestep_range_refuses_what_cannot_train():
    with pytest.raises(ValueError, match="only for SDXL"):
        training_timestep_range(_config(refiner_training=True), "sd1", 1000)
    with pytest.raises(ValueError, match="no timesteps"):
        training_timestep_range(_config(refiner_training_strength=1.0, refiner_training_invert_schedule=True),
                                "sdxl-refiner", 1000)


def test_refiner_keys_change_the_train_key(tiny_models):
    digests = {"text_cache": "t"}
    model = str(tiny_models["sdxl-refiner"])
    keys = {train_key(_config(**v).model_copy(update={"pretrained_model_name_or_path": model}), digests) for v in ({}, {"refiner_training": True}, {"data_aesthetic_score": 5.0},
                                                        {"refiner_training_strength": 0.3})}
    assert len(keys) == 4


def _train(make_run, ingest_and_cache, tiny_models, monkeypatch, **training):
    config = make_run(str(tiny_models["sdxl-refiner"]), **training)
    store, vae, text, _ = ingest_and_cache(config)
    drawn = []
    add_noise = diffusers.DDPMScheduler.add_noise

    def recording(self, samples, noise, timesteps):
        drawn.extend(timesteps.tolist())
        return add_noise(self, samples, noise, timesteps)

    monkeypatch.setattr(diffusers.DDPMScheduler, "add_noise", recording)
    result = train_stage(plan_training(config, cache_digests(CacheResults(vae_cache=vae, text_cache=text), config)), store,
                         open_batch_source(store, config, vae, text),
                         show_progress=False)
    monkeypatch.undo()
    return config, store, result, drawn


def _refine(pipe, seed: int = 0) -> np.ndarray:
    start = Image.new("RGB", (64, 64), (180, 90, 40))
    return pipe(prompt="a toy", image=start, strength=0.5, num_inference_steps=4, output_type="np",
                generator=torch.Generator("cpu").manual_seed(seed)).images[0]


def test_refiner_lora_trains_low_noise_and_loads_into_a_stock_img2img_pipeline(
        make_run, ingest_and_cache, tiny_models, monkeypatch, tmp_path):
    _, store, result, drawn = _train(make_run, ingest_and_cache, tiny_models, monkeypatch,
                                     learning_rate=5e-2, max_train_steps=3)
    assert result.details["family"] == "sdxl-refiner" and result.details["adapter"] == "lora"
    assert len(drawn) >= 3 and all(0 <= t < 200 for t in drawn)  # every sample of 3 steps in the refiner's range
    local = tmp_path / "lora"
    store.fs.get(store.path(f"train/{result.key}/export/diffusers"), str(local), recursive=True)

    pipe = diffusers.StableDiffusionXLImg2ImgPipeline.from_pretrained(str(tiny_models["sdxl-refiner"]))
    pipe.set_progress_bar_config(disable=True)
    before = _refine(pipe)
    pipe.load_lora_weights(str(local), weight_name="pytorch_lora_weights.safetensors")
    tuned = _refine(pipe)
    assert np.abs(tuned - before).max() > 1e-3  # the LoRA changes what the refiner draws
    pipe.unload_lora_weights()
    assert np.allclose(_refine(pipe), before, atol=1e-6)  # ... and only the LoRA does


def test_full_refiner_fine_tune_exports_a_refiner_pipeline(make_run, ingest_and_cache, tiny_models, monkeypatch,
                                                            tmp_path):
    _, store, result, drawn = _train(make_run, ingest_and_cache, tiny_models, monkeypatch, model_type="full",
                                     learning_rate=1e-3, max_train_steps=2, sdxl_refiner_uses_full_range=True)
    assert any(t >= 200 for t in drawn)  # the full range when asked for
    local = tmp_path / "pipeline"
    store.fs.get(store.path(f"train/{result.key}/export/pipeline"), str(local), recursive=True)
    tuned = diffusers.StableDiffusionXLImg2ImgPipeline.from_pretrained(str(local))
    stock = diffusers.StableDiffusionXLImg2ImgPipeline.from_pretrained(str(tiny_models["sdxl-refiner"]))
    assert tuned.text_encoder is None and tuned.config.requires_aesthetics_score
    changed = [n for n, p in tuned.unet.named_parameters() if not torch.equal(p, stock.unet.get_parameter(n))]
    assert changed
