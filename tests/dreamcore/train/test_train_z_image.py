"""Z-Image through the train stage on its tiny model: the diffusers LoRA loads with stock
`ZImagePipeline.load_lora_weights` and changes the output, LyCORIS and full fine-tunes export, a crashed run
resumes exactly, and the denoiser call is the pipeline's (t = 1 - sigma, real caption tokens, negated output)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.storage import ArtifactStore
from tests.conftest import torch_threads
from tests.dreamcore.train.test_train_dit_export import _train


@pytest.fixture(scope="module")
def z_image_samples(tiny_models, tmp_path_factory):
    """4 subject samples (with masks) + 2 regularisation samples: Qwen3 states [32, 32] with their mask,
    32x32x16 latents."""
    from dreamcore.train.memory import demo_samples

    with torch_threads(1):
        return demo_samples(tiny_models["z_image"], tmp_path_factory.mktemp("train-demo-z-image"))


@pytest.fixture
def z_image_config(make_config, tiny_models):
    """TrainingConfig factory for the tiny Z-Image (CPU fp32, batch 2, 4 steps, checkpoints every 2)."""
    def make(**overrides):
        return make_config(**({"pretrained_model_name_or_path": str(tiny_models["z_image"]), "model_family": "z_image"}
                              | overrides))

    return make


def _generate(pipe):
    return pipe("a photo of sks toy", num_inference_steps=2, guidance_scale=2.0, height=64, width=64,
                output_type="np", generator=torch.Generator().manual_seed(0)).images


def _stock_pipeline(tiny_models):
    from diffusers import ZImagePipeline

    return ZImagePipeline.from_pretrained(tiny_models["z_image"])


def test_samples_carry_the_real_qwen3_tokens_and_16_channel_latents(z_image_samples):
    sample = z_image_samples[0]
    assert sample.prompt_embeds.shape[-2:] == (32, 32) and sample.pooled_prompt_embeds is None
    mask = sample.prompt_attention_mask[0]
    assert 0 < int(mask.sum()) < 32 and not mask[int(mask.sum()):].any()  # the chat turn's tokens, then padding
    assert not sample.prompt_embeds[0][~mask].any()  # padding states are zeros: the transformer never reads them
    assert sample.latents.shape[-3:] == (16, 32, 32)


def test_the_denoiser_is_called_as_the_pipeline_calls_it(tiny_models, z_image_samples):
    """predict_z_image equals ZImagePipeline's own step arithmetic: t = (1000 - timestep) / 1000 on the
    per-sample lists of latents and real caption states, output negated."""
    from dreamcore.models.families import family_named
    from dreamcore.models.families.denoisers import Conditioning

    transformer = _stock_pipeline(tiny_models).transformer
    sample = z_image_samples[0]
    noisy, timestep = torch.randn(1, 16, 32, 32, generator=torch.Generator().manual_seed(0)), torch.tensor([700.0])
    conditioning = Conditioning(sample.prompt_embeds, attention_mask=sample.prompt_attention_mask)
    with torch.no_grad():
        ours = family_named("z_image").predict(transformer, noisy, timestep, conditioning)
        real = sample.prompt_embeds[0][sample.prompt_attention_mask[0]]
        theirs = -transformer([noisy[0].unsqueeze(1)], torch.tensor([0.3]), [real], return_dict=False)[0][0].squeeze(1)
    assert torch.allclose(ours[0], theirs, atol=1e-6)


def test_diffusers_lora_loads_into_z_image_pipeline_and_changes_its_output(z_image_config, z_image_samples,
                                                                           tiny_models, tmp_path):
    config = z_image_config(max_train_steps=3, lora_alpha=8, learning_rate=5e-2, use_ema=True)
    store, result = _train(config, z_image_samples, tmp_path)
    assert result.details["family"] == "z_image" and result.details["prediction_type"] == "flow_matching"
    assert set(result.details["exports"]) == set(result.details["ema_exports"]) == {"diffusers_lora"}
    pipe = _stock_pipeline(tiny_models)
    before = _generate(pipe)
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"),
                           weight_name="pytorch_lora_weights.safetensors")
    assert abs(_generate(pipe) - before).max() > 1e-3
    saved = load_file(store.path(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    assert saved and all(k.startswith("transformer.") for k in saved)
    assert "ZImagePipeline.load_lora_weights" in store.read_bytes(f"train/{result.key}/README.md").decode()


def test_lycoris_and_full_fine_tunes_export(z_image_config, z_image_samples, tiny_models, tmp_path, lycoris_file):
    from diffusers import ZImagePipeline
    from lycoris import create_lycoris_from_weights

    spec = {"algo": "lokr", "linear_dim": 10000, "linear_alpha": 1, "factor": 4}
    config = z_image_config(max_train_steps=2, learning_rate=5e-2, lora_type="lycoris",
                            lycoris_config=lycoris_file(spec))
    store, result = _train(config, z_image_samples, tmp_path / "lycoris")
    pipe = _stock_pipeline(tiny_models)
    before = _generate(pipe)
    network, _ = create_lycoris_from_weights(1.0, store.path(f"train/{result.key}/export/lycoris/lycoris.safetensors"),
                                             pipe.transformer)
    network.apply_to()
    assert len(network.loras) == result.counts["wrapped_modules"]
    assert abs(_generate(pipe) - before).max() > 1e-4

    config = z_image_config(max_train_steps=2, learning_rate=1e-3, model_type="full")
    store, result = _train(config, z_image_samples, tmp_path / "full")
    trained = ZImagePipeline.from_pretrained(store.path(f"train/{result.key}/export/pipeline"))
    network.restore()
    assert abs(_generate(trained) - _generate(pipe)).max() > 1e-4


def test_resume_is_exact(z_image_config, z_image_samples, make_trainer, crash_and_resume, tmp_path,
                         assert_resumed_exactly):
    """A crash after step 3 with checkpoints every 2 resumes at 2 and ends equal (EMA, accumulation, dropout)."""
    config = z_image_config(max_train_steps=4, checkpointing_steps=2, lora_dropout=0.1, use_ema=True,
                            lr_scheduler="cosine", lr_warmup_steps=1, gradient_accumulation_steps=2)
    straight = make_trainer(config, z_image_samples, store=ArtifactStore(str(tmp_path / "a")))
    straight_outcome = straight.train()
    resumed, outcome = crash_and_resume(config, z_image_samples)
    assert_resumed_exactly(straight, straight_outcome, resumed, outcome)


def test_prior_preservation_and_huber_train_and_ddpm_only_features_are_refused(z_image_config, z_image_samples,
                                                                                make_trainer):
    """Prior preservation on the base's own prediction and the Huber loss train; min-SNR, scheduled sampling and
    validation_guidance_rescale (ZImagePipeline takes none) are refused by key."""
    config = z_image_config(max_train_steps=2, prior_preservation_target="base_prediction", loss_type="huber")
    outcome = make_trainer(config, z_image_samples).train()
    assert outcome.steps_run == 2 and all(torch.isfinite(torch.tensor(e["loss"])) for e in outcome.history)
    with pytest.raises(ValueError, match="snr_gamma.*z_image.*flow matching"):
        make_trainer(z_image_config(snr_gamma=5.0), z_image_samples)
    with pytest.raises(ValueError, match="scheduled_sampling_max_step_offset.*z_image"):
        make_trainer(z_image_config(scheduled_sampling_max_step_offset=3), z_image_samples)
    with pytest.raises(ValueError, match="validation_guidance_rescale.*ZImagePipeline"):
        make_trainer(z_image_config(validation_guidance_rescale=0.7), z_image_samples)
