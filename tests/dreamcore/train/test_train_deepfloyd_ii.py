"""DeepFloyd IF stage II (the 64 -> 256 px upscaler), trained on pairs made from the cached target pixels: the
conditioning image is the target downscaled, upscaled back and noised at the drawn level; training with prior
preservation and the eval loss see it; the diffusers LoRA, LyCORIS, a full fine-tune and their EMA load with the
stock IFSuperResolutionPipeline and change its output (a kill and exact resume: tests/flows/test_deepfloyd_flow.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from dreamcore.models import family_named
from dreamcore.models.families.denoisers import Conditioning
from dreamcore.storage import ArtifactStore
from dreamcore.train.memory import InMemoryBatchSource
from dreamcore.train.plan import plan_training
from dreamcore.train.stage import train_stage
from tests.conftest import torch_threads
from tests.dreamcore.train.test_train_adapters import LOKR
from tests.dreamcore.train.test_train_deepfloyd import ADAPTERS, assert_every_export_loads, train_in_memory


@pytest.fixture(scope="module")
def if2_samples(tiny_models, tmp_path_factory):
    """4 subject samples (with masks) + 2 regularisation samples for the tiny IF stage II: target pixels
    [1, 3, 64, 64] (its low-resolution input is made from them while training)."""
    from dreamcore.train.memory import demo_samples

    return demo_samples(tiny_models["deepfloyd-ii"], tmp_path_factory.mktemp("train-demo-deepfloyd-ii"))


@pytest.fixture
def make_if2_config(make_dit_config, tiny_models):
    """TrainingConfig factory for the tiny IF stage II (model_family deepfloyd; CPU fp32, batch 2, 4 steps)."""
    return lambda **overrides: make_dit_config(
        "deepfloyd", **({"pretrained_model_name_or_path": str(tiny_models["deepfloyd-ii"])} | overrides))


def _upscale(pipe, low_res):
    return pipe(image=low_res, prompt="a photo of sks toy", num_inference_steps=2, guidance_scale=1.0,
                noise_level=100, output_type="pt", generator=torch.Generator().manual_seed(0)).images


def test_the_conditioning_image_is_the_downscaled_upscaled_target_noised_at_the_drawn_level(if2_samples,
                                                                                           tiny_models) -> None:
    from diffusers import DDPMScheduler

    family = family_named("deepfloyd-ii")
    clean = torch.cat([sample.latents for sample in if2_samples[:2]])
    image, level = family.image_conditioning(clean, torch.Generator().manual_seed(3))
    # The same draws, by hand: the level first, then the augmentation noise.
    generator = torch.Generator().manual_seed(3)
    expected_level = torch.randint(0, 251, (2,), generator=generator)
    noise = torch.randn(clean.shape, generator=generator)
    low = F.interpolate(clean, (16, 16), mode="bilinear", antialias=True)
    upscaled = F.interpolate(low, (64, 64), mode="bilinear", align_corners=True)
    # Noised with the pipeline's own image_noising_scheduler, as IFSuperResolutionPipeline.__call__ does.
    noising = DDPMScheduler.from_pretrained(tiny_models["deepfloyd-ii"], subfolder="image_noising_scheduler")
    alphas = noising.alphas_cumprod[expected_level].view(2, 1, 1, 1)
    assert torch.equal(level, expected_level)
    assert torch.allclose(image, alphas.sqrt() * upscaled + (1 - alphas).sqrt() * noise, atol=1e-5)
    assert not torch.allclose(image, clean, atol=0.1)  # degraded: not the target itself


def test_predict_concatenates_the_conditioning_image_and_takes_the_noise_half(tiny_models, if2_samples) -> None:
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_models["deepfloyd-ii"], subfolder="unet")
    family, sample = family_named("deepfloyd-ii"), if2_samples[0]
    image, level = family.image_conditioning(sample.latents, torch.Generator().manual_seed(0))
    noisy, steps = torch.randn_like(sample.latents), torch.tensor([500])
    with torch.no_grad():
        full = unet(torch.cat([noisy, image], 1), steps, encoder_hidden_states=sample.prompt_embeds,
                    class_labels=level).sample
        prediction = family.predict(unet, noisy, steps, Conditioning(sample.prompt_embeds, image=image,
                                                                     class_labels=level))
    assert full.shape[1] == 6 and torch.equal(prediction, full[:, :3])
    with pytest.raises(ValueError, match="low-resolution input"):
        family.predict(unet, noisy, steps, Conditioning(sample.prompt_embeds))


def test_stage_two_trains_and_its_lora_loads_into_the_super_resolution_pipeline(make_if2_config, if2_samples,
                                                                                tiny_models, tmp_path) -> None:
    from dreamcore.models import load_pipeline

    # Prior preservation on the base prediction: the regularisation samples' targets run the base UNet on the
    # same conditioning image.
    config = make_if2_config(max_train_steps=3, lora_alpha=8, learning_rate=5e-2,
                             prior_preservation_target="base_prediction")
    store = ArtifactStore(str(tmp_path))
    with torch_threads(1):
        plan = plan_training(config, {"latents": "digest-1"})
        result = train_stage(plan, store, InMemoryBatchSource(if2_samples, 2, seed=0),
                             show_progress=False)
    assert result.details["family"] == "deepfloyd-ii"
    assert torch.isfinite(torch.tensor(result.details["final_loss"]))
    pipe = load_pipeline(tiny_models["deepfloyd-ii"])
    assert type(pipe).__name__ == "IFSuperResolutionPipeline"
    low_res = torch.rand(1, 3, 16, 16) * 2 - 1
    before = _upscale(pipe, low_res)
    assert before.shape[-2:] == (64, 64)
    folder = store.path(f"train/{result.key}/export/diffusers")
    pipe.load_lora_weights(folder, weight_name="pytorch_lora_weights.safetensors")
    assert abs(_upscale(pipe, low_res) - before).max() > 1e-3
    saved = load_file(f"{folder}/pytorch_lora_weights.safetensors")
    assert saved and all(k.startswith("unet.") for k in saved)
    assert len([n for n, _ in pipe.unet.named_modules() if n.endswith(".lora_A")]) == len(saved) // 2


def test_the_trainer_draws_one_conditioning_image_per_batch_for_prediction_and_prior(make_trainer, make_if2_config,
                                                                                    if2_samples) -> None:
    trainer = make_trainer(make_if2_config(prior_preservation_target="base_prediction"), if2_samples)
    latents = torch.cat([if2_samples[0].latents, if2_samples[4].latents])
    image = trainer._image_conditioning(latents)
    assert image is not None and image[0].shape == latents.shape and image[1].shape == (2,)
    loss = trainer.loss(next(iter(InMemoryBatchSource(if2_samples, 2, seed=0))))
    assert torch.isfinite(loss.total)


def test_the_eval_loss_conditions_on_a_low_resolution_input_fixed_by_its_seed(tiny_models, if2_samples) -> None:
    from diffusers import UNet2DConditionModel

    from dreamcore.evaluate.eval_loss import compute_eval_loss
    from dreamcore.models.families.deepfloyd.tiny import if_scheduler

    unet = UNet2DConditionModel.from_pretrained(tiny_models["deepfloyd-ii"], subfolder="unet")
    batches, family = if2_samples[:2], family_named("deepfloyd-ii")
    first = compute_eval_loss(unet, if_scheduler(), "epsilon", batches, [100, 700], seed=1, family=family)
    again = compute_eval_loss(unet, if_scheduler(), "epsilon", batches, [100, 700], seed=1, family=family)
    other = compute_eval_loss(unet, if_scheduler(), "epsilon", batches, [100, 700], seed=2, family=family)
    assert torch.isfinite(torch.tensor(first.mean)) and first.per_timestep == again.per_timestep
    assert first.per_timestep != other.per_timestep


@pytest.mark.parametrize(("flavour", "hub_id"), [("ii-medium-450m", "DeepFloyd/IF-II-M-v1.0"),
                                                 ("ii-large-1.2b", "DeepFloyd/IF-II-L-v1.0")])
def test_simpletuners_stage_two_flavours_select_the_upscaler_family(flavour: str, hub_id: str) -> None:
    from dreamcore.config import TrainingConfig
    from dreamcore.models.families import family_from_configs

    config = TrainingConfig(model_family="deepfloyd", model_flavour=flavour)
    assert config.pretrained_model_name_or_path == hub_id
    # Its folder (model_index.json: IFSuperResolutionPipeline) is this family's, no longer refused.
    family = family_from_configs({"_class_name": "IFSuperResolutionPipeline"}, lambda folder: {}, where=hub_id)
    assert family.name == "deepfloyd-ii" and "deepfloyd" in family.config_names


def test_rollout_denoises_with_the_batchs_conditioning_image(make_trainer, make_if2_config, if2_samples) -> None:
    from dreamcore.train.memory import collate

    trainer = make_trainer(make_if2_config(scheduled_sampling_max_step_offset=3, scheduled_sampling_probability=1.0,
                                           scheduled_sampling_sampler="euler"), if2_samples)
    batch = collate(if2_samples[:2])
    latents, noise, timesteps = batch.latents, torch.randn(2, 3, 64, 64), torch.tensor([100, 300])
    noisy = trainer.base.noise_scheduler.add_noise(latents, noise, timesteps)
    image = trainer._image_conditioning(latents)
    rolled = trainer._rolled_out(noisy, latents, noise, timesteps, torch.tensor([2, 0]), batch, image)
    assert torch.equal(rolled[1], noisy[1]) and not torch.allclose(rolled[0], noisy[0])
    with pytest.raises(ValueError, match="low-resolution input"):  # without it the stage-II UNet cannot be called
        trainer._rolled_out(noisy, latents, noise, timesteps, torch.tensor([2, 0]), batch)
    assert torch.isfinite(trainer.loss(batch).total)  # rollout drawn with probability 1 inside the loss too


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_lycoris_and_full_train_with_ema_and_load_into_the_super_resolution_pipeline(
        make_if2_config, if2_samples, tiny_models, lycoris_file, tmp_path, adapter) -> None:
    from dreamcore.models import load_pipeline

    config = make_if2_config(max_train_steps=2, use_ema=True, ema_decay=0.5, lycoris_config=lycoris_file(LOKR),
                             **ADAPTERS[adapter])
    result, store = train_in_memory(config, if2_samples, tmp_path / "store")
    assert result.details["family"] == "deepfloyd-ii"
    low_res = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pipe = load_pipeline(tiny_models["deepfloyd-ii"])
    assert_every_export_loads(pipe, result, store, config, lambda drawing: _upscale(drawing, low_res),
                              tmp_path / "loaded")

