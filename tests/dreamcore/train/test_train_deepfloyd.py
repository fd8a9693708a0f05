"""DeepFloyd IF stage I, trained in pixel space: the diffusers LoRA loads with the stock IFPipeline and changes
its output; the loss is on the noise half of the 6-channel output; masked loss weights exactly the mask's pixels;
a run killed mid-way resumes exactly; LyCORIS and a full fine-tune train, with EMA, and every export loads in
IFPipeline."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.models import family_named
from dreamcore.storage import ArtifactStore
from dreamcore.train.memory import InMemoryBatchSource
from dreamcore.train.plan import plan_training
from dreamcore.train.stage import train_stage
from tests.conftest import torch_threads
from tests.dreamcore.train.test_train_adapters import LOKR


@pytest.fixture(scope="module")
def if_samples(tiny_models, tmp_path_factory):
    """4 subject samples (with masks) + 2 regularisation samples of the tiny IF stage I: pixels [1, 3, 64, 64]."""
    from dreamcore.train.memory import demo_samples

    return demo_samples(tiny_models["deepfloyd"], tmp_path_factory.mktemp("train-demo-deepfloyd"))


@pytest.fixture
def make_if_config(make_dit_config):
    """TrainingConfig factory for the tiny IF stage I (conftest's: CPU fp32, batch 2, 4 steps, checkpoints every 2)."""
    return lambda **overrides: make_dit_config("deepfloyd", **overrides)


def _generate(pipe):
    return pipe("a photo of sks toy", num_inference_steps=2, guidance_scale=1.0, height=64, width=64,
                output_type="pt", generator=torch.Generator().manual_seed(0)).images


def test_samples_are_pixels(if_samples) -> None:
    sample = if_samples[0]
    assert sample.latents.shape == (1, 3, 64, 64) and sample.latents.abs().max() <= 1.0
    assert sample.prompt_embeds.shape[1] == 77  # IFPipeline.encode_prompt's fixed T5 length


def test_diffusers_lora_loads_into_ifpipeline_and_changes_its_output(make_if_config, if_samples, tiny_models,
                                                                   tmp_path) -> None:
    from dreamcore.models import load_pipeline

    config = make_if_config(max_train_steps=3, lora_alpha=8, learning_rate=5e-2, use_ema=True)
    store = ArtifactStore(str(tmp_path))
    with torch_threads(1):
        plan = plan_training(config, {"latents": "digest-1"})
        result = train_stage(plan, store, InMemoryBatchSource(if_samples, 2, seed=0),
                             show_progress=False)
    assert result.details["family"] == "deepfloyd" and result.details["prediction_type"] == "epsilon"
    assert set(result.details["exports"]) == set(result.details["ema_exports"]) == {"diffusers_lora"}
    pipe = load_pipeline(tiny_models["deepfloyd"])
    assert type(pipe).__name__ == "IFPipeline"
    before = _generate(pipe)
    folder = store.path(f"train/{result.key}/export/diffusers")
    pipe.load_lora_weights(folder, weight_name="pytorch_lora_weights.safetensors")
    assert abs(_generate(pipe) - before).max() > 1e-3
    saved = load_file(f"{folder}/pytorch_lora_weights.safetensors")
    loaded = [name for name, _ in pipe.unet.named_modules() if name.endswith(".lora_A")]
    assert len(loaded) == len(saved) // 2 == result.counts["wrapped_modules"]  # every trained module loads
    assert saved and all(k.startswith("unet.") for k in saved)
    assert any("add_k_proj" in k for k in saved)  # IF's added (text) key/value projections train too
    assert "IFPipeline.load_lora_weights" in store.read_bytes(f"train/{result.key}/README.md").decode()


def test_the_loss_is_on_the_noise_half_of_the_learned_variance_output(tiny_models, if_samples) -> None:
    from diffusers import UNet2DConditionModel

    from dreamcore.models.families.denoisers import Conditioning

    unet = UNet2DConditionModel.from_pretrained(tiny_models["deepfloyd"], subfolder="unet")
    sample = if_samples[0]
    noisy, steps = torch.randn_like(sample.latents), torch.tensor([500])
    with torch.no_grad():
        full = unet(noisy, steps, encoder_hidden_states=sample.prompt_embeds).sample
        prediction = family_named("deepfloyd").predict(unet, noisy, steps, Conditioning(sample.prompt_embeds))
    assert full.shape[1] == 6 and prediction.shape == noisy.shape
    assert torch.equal(prediction, full[:, :3])


def test_masked_loss_in_pixel_space_weights_exactly_the_masks_pixels(if_samples) -> None:
    from dreamcore.train.losses import latent_mask, per_sample_loss

    masked = next(s for s in if_samples if s.loss_mask is not None and 0 < s.loss_mask.mean() < 1)
    binary = (masked.loss_mask > 0.5).float()
    mask = latent_mask(binary, tuple(masked.latents.shape[-2:]))
    assert torch.equal(mask, binary.reshape(mask.shape))  # at image resolution: the mask itself, not resized
    prediction, target = torch.zeros_like(masked.latents), torch.randn_like(masked.latents)
    inside = mask.expand_as(target) > 0.5
    loss = per_sample_loss(prediction, target, mask, normalise_by_area=True)
    assert torch.allclose(loss, (target[inside] ** 2).mean().reshape(1))
    changed = target.clone()
    changed[~inside] += 100.0  # outside the mask nothing counts
    assert torch.equal(per_sample_loss(prediction, changed, mask, normalise_by_area=True), loss)


@pytest.mark.parametrize("options", [dict(use_ema=True), dict(model_type="full", learning_rate=1e-4, use_ema=True)])
def test_a_run_killed_mid_way_resumes_exactly(make_if_config, make_trainer, if_samples, crash_and_resume,
                                              assert_resumed_exactly, options) -> None:
    config = make_if_config(**options)
    straight = make_trainer(config, if_samples, folder="train/a")
    straight_outcome = straight.train()
    resumed, outcome = crash_and_resume(config, if_samples)
    assert_resumed_exactly(straight, straight_outcome, resumed, outcome)


def test_lycoris_and_prior_preservation_train(make_if_config, make_trainer, if_samples, lycoris_file) -> None:
    config = make_if_config(model_type="lora", lora_type="lycoris", max_train_steps=2,
                            lycoris_config=lycoris_file(LOKR),
                            prior_loss_weight=1.0)
    outcome = make_trainer(config, if_samples).train()
    losses = [entry["loss"] for entry in outcome.history]
    assert outcome.steps_run == 2 and torch.isfinite(torch.tensor(losses)).all()


def assert_every_export_loads(pipe, result, store, config, draw, tmp_path) -> None:
    """Each export of `result` (final and EMA) loads into the stock `pipe` with the libraries' own loaders (the
    evaluate stage's drawing.weights.applied: LyCORIS's create_lycoris_from_weights, the UNet class's
    from_pretrained, load_lora_weights) and changes what it draws; a full export is a whole pipeline its class
    loads."""
    from dreamcore.drawing.weights import applied, weights_of_training
    from dreamcore.storage.copies import download_weights

    before = draw(pipe)
    refs = [ref for ref in weights_of_training(store, result, include_base=False) if ref.kind != "checkpoint"]
    assert {ref.name for ref in refs} == {"final", "ema"}
    for ref in refs:
        with applied(pipe, ref, config, config.pretrained_model_name_or_path) as ready:
            assert abs(draw(ready) - before).max() > 1e-4, ref
        if ref.kind == "pipeline":
            folder = download_weights(ref.uri, tmp_path)
            loaded = type(pipe).from_pretrained(str(folder))
            assert abs(draw(loaded) - before).max() > 1e-4
    assert torch.equal(draw(pipe), before)  # each set of weights came off again


def train_in_memory(config, samples, tmp_path):
    """(result, store) of the train stage on an in-memory source of `samples` (1 torch thread)."""
    store = ArtifactStore(str(tmp_path))
    with torch_threads(1):
        result = train_stage(plan_training(config, {"latents": "digest-1"}), store,
                             InMemoryBatchSource(samples, 2, seed=0), show_progress=False)
    return result, store


# LyCORIS (LoKr) and a full fine-tune, each with EMA: the kinds of weights besides a peft LoRA.
ADAPTERS = {"lycoris": dict(lora_type="lycoris", learning_rate=5e-2),
            "full": dict(model_type="full", learning_rate=1e-3)}


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_lycoris_and_full_train_with_ema_and_load_into_ifpipeline(make_if_config, if_samples, tiny_models,
                                                                  lycoris_file, tmp_path, adapter) -> None:
    from dreamcore.models import load_pipeline

    config = make_if_config(max_train_steps=2, use_ema=True, ema_decay=0.5, lycoris_config=lycoris_file(LOKR),
                            **ADAPTERS[adapter])
    result, store = train_in_memory(config, if_samples, tmp_path / "store")
    assert result.details["family"] == "deepfloyd"
    assert_every_export_loads(load_pipeline(tiny_models["deepfloyd"]), result, store, config, _generate,
                              tmp_path / "loaded")
