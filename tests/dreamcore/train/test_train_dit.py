"""Training SD3 and Flux (flow matching) on their tiny models: every adapter, quantised base, EMA, both prior
preservations, masked loss, exact resume, refusals and the eval loss at fixed sigmas."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from dreamcore.storage import ArtifactStore
from dreamcore.train.memory import collate

KINDS = ("sd3", "flux")
LOKR = {"algo": "lokr", "linear_dim": 10000, "linear_alpha": 1, "factor": 4}


def _fixed_loss(trainer, batch, draws: int = 6) -> float:
    """Mean loss over the same noise/sigma draws every time (a fair before/after comparison)."""
    trainer.noise.manual_seed(1234)
    with torch.no_grad():
        return sum(float(trainer.loss(batch).total) for _ in range(draws)) / draws


def _changed(before: dict, after: dict) -> bool:
    return any(not torch.equal(before[name], after[name]) for name in before)


@pytest.mark.parametrize("kind", KINDS)
def test_lora_loss_falls_on_a_fixed_batch(kind, make_dit_config, make_trainer, dit_samples):
    subject = dit_samples[kind][:2]
    trainer = make_trainer(make_dit_config(kind, learning_rate=1e-2, lora_rank=8, max_train_steps=20,
                                           checkpointing_steps=1000), subject)
    assert trainer.base.prediction_type == "flow_matching"
    before = _fixed_loss(trainer, collate(subject))
    history = trainer.train().history
    after = _fixed_loss(trainer, collate(subject))
    assert after < 0.95 * before, (before, after)
    assert len(history) == 20 and all(e["loss"] > 0 for e in history)


def test_lora_targets_follow_the_family_and_flux_presets(make_dit_config, make_trainer, dit_samples):
    def wrapped(kind, **overrides):
        trainer = make_trainer(make_dit_config(kind, **overrides), dit_samples[kind])
        return {name.rsplit(".", 1)[-1] if not name.endswith("out.0") else "to_out.0"
                for name, module in trainer.base.unet.named_modules() if hasattr(module, "lora_A")}

    assert wrapped("sd3") == {"to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj",
                              "to_add_out"}
    assert wrapped("flux", flux_lora_target="context") == {"add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"}
    assert wrapped("flux", flux_lora_target="mmdit") == {"to_q", "to_k", "to_v", "to_out.0"}
    assert {"proj_mlp", "proj_out", "2", "proj"} <= wrapped("flux", flux_lora_target="all+ffs")  # ff.net.2, net.0.proj
    assert wrapped("flux", flux_lora_target="context", peft_lora_target_modules="to_q") == {"to_q"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("adapter", ["lycoris", "full", "int8-quanto", "int4-quanto"])
def test_every_adapter_and_a_quantised_base_train(kind, adapter, make_dit_config, make_trainer, dit_samples,
                                                   lycoris_file):
    overrides = {"lycoris": {"lora_type": "lycoris", "lycoris_config": lycoris_file(LOKR)},
                 "full": {"model_type": "full"},
                 "int8-quanto": {"base_model_precision": "int8-quanto"},
                 "int4-quanto": {"base_model_precision": "int4-quanto"}}[adapter]
    trainer = make_trainer(make_dit_config(kind, max_train_steps=2, learning_rate=1e-2, **overrides),
                           dit_samples[kind])
    if adapter.endswith("quanto"):
        from optimum.quanto import QLinear

        assert any(isinstance(m, QLinear) for m in trainer.base.unet.modules())
    before = trainer.adapter.trainable_state()
    history = trainer.train().history
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(e["loss"])) for e in history)
    assert trainer.adapter.wrapped_modules > 0 and _changed(before, trainer.adapter.trainable_state())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model_type", ["lora", "full"])
def test_prior_preservation_targets_the_base_prediction(kind, model_type, make_dit_config, make_trainer,
                                                         dit_samples, tiny_models):
    from dreamcore.models import load_pipeline
    from dreamcore.train.trainer import batch_conditioning

    samples = dit_samples[kind]
    trainer = make_trainer(make_dit_config(kind, model_type=model_type, prior_loss_weight=0.5), samples)
    with torch.no_grad():
        for p in trainer.params:  # make the adapter matter, so "base" and "adapted" differ
            p.add_(0.05)
    batch = collate([samples[0], samples[4]])  # one subject, one regularisation sample
    assert batch.is_regularisation.tolist() == [False, True]
    torch.manual_seed(0)
    noisy, velocity = torch.randn(2, 16, 32, 32), torch.randn(2, 16, 32, 32)
    timesteps, guidance = torch.tensor([300.0, 300.0]), torch.ones(2)
    target = trainer.prior_targets(velocity, noisy, timesteps, batch, guidance)
    base_model = load_pipeline(tiny_models[kind]).transformer
    predict = trainer.base.family.predict
    with torch.no_grad():
        base = predict(base_model, noisy, timesteps, batch_conditioning(batch, guidance))
        adapted = predict(trainer.base.unet, noisy, timesteps, batch_conditioning(batch, guidance))
    assert torch.equal(target[0], velocity[0])  # subject: the flow target
    assert (target[1] - base[1]).abs().max() < 1e-5
    assert not torch.allclose(target[1], adapted[1], atol=1e-4)
    parts = trainer.loss(batch)
    assert parts.subject_count == 1 and parts.regularisation_count == 1
    noise_target = make_trainer(make_dit_config(kind, prior_preservation_target="noise"), samples)
    assert torch.equal(noise_target.prior_targets(velocity, noisy, timesteps, batch, guidance), velocity)


@pytest.mark.parametrize("kind", KINDS)
def test_masked_loss_weighs_latent_pixels_in_unpacked_space(kind, make_dit_config, make_trainer, dit_samples):
    samples = dit_samples[kind]
    trainer = make_trainer(make_dit_config(kind), samples)
    batch = collate(samples[:2])
    assert batch.loss_mask is not None and batch.loss_mask.shape[-1] == 64  # pixel size in, latent size inside

    def loss(b, normalise=False):
        trainer.config = trainer.config.model_copy(update={"masked_loss_normalise_by_area": normalise})
        trainer.noise.manual_seed(7)
        with torch.no_grad():
            return float(trainer.loss(b).total)

    unmasked = loss(replace(batch, loss_mask=None))
    assert loss(replace(batch, loss_mask=torch.ones_like(batch.loss_mask))) == pytest.approx(unmasked, rel=1e-6)
    masked = loss(batch)
    assert masked < unmasked  # zeros drop pixels from the mean
    assert loss(batch, normalise=True) != pytest.approx(masked)


@pytest.mark.parametrize("kind", KINDS)
def test_resume_is_exact(kind, make_dit_config, make_trainer, dit_samples, tmp_path, assert_resumed_exactly):
    """A crash after step 3 with checkpoints every 2 resumes at 2 and ends equal (EMA, accumulation, guidance draws)."""
    config = make_dit_config(kind, max_train_steps=4, checkpointing_steps=2, lora_dropout=0.1, use_ema=True,
                             lr_scheduler="cosine", lr_warmup_steps=1, gradient_accumulation_steps=2,
                             flux_guidance_mode="random-range", flow_use_beta_schedule=True)
    straight = make_trainer(config, dit_samples[kind], store=ArtifactStore(str(tmp_path / "a")))
    straight_outcome = straight.train()

    def crash(entry):
        if entry["step"] == 3:
            raise RuntimeError("simulated crash")

    crashing = make_trainer(config, dit_samples[kind], store=ArtifactStore(str(tmp_path / "b")), on_step=crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.train()
    resumed = make_trainer(config, dit_samples[kind], store=ArtifactStore(str(tmp_path / "b")))
    outcome = resumed.train()
    assert_resumed_exactly(straight, straight_outcome, resumed, outcome)
    ema, raw = straight.ema.shadow_state(), straight.adapter.trainable_state()
    assert any(not torch.equal(ema[n], raw[n]) for n in raw)  # the EMA lags the raw weights


@pytest.mark.parametrize(("key", "value"), [("snr_gamma", 5.0), ("scheduled_sampling_max_step_offset", 5),
                                            ("prediction_type", "epsilon")])
def test_flow_matching_refuses_ddpm_features_at_setup(key, value, make_dit_config, make_trainer, dit_samples):
    with pytest.raises(ValueError, match=rf"{key}.*flow matching"):
        make_trainer(make_dit_config("flux", **{key: value}), dit_samples["flux"])


@pytest.mark.parametrize("kind", KINDS)
def test_eval_loss_at_fixed_sigmas(kind, make_dit_config, make_trainer, dit_samples):
    from dreamcore.evaluate.eval_loss import compute_eval_loss

    trainer = make_trainer(make_dit_config(kind, learning_rate=1e-2), dit_samples[kind])
    base, family = trainer.base, trainer.base.family
    batches = [collate(dit_samples[kind][:2])]

    def eval_loss(seed=5):
        return compute_eval_loss(base.unet, base.noise_scheduler, base.prediction_type, batches, [100, 500, 900],
                                 seed=seed, family=family, guidance=1.0)

    first = eval_loss()
    assert first.as_dict() == eval_loss().as_dict() and set(first.per_timestep) == {100, 500, 900}
    assert eval_loss(seed=6).mean != first.mean
    trainer.train()
    assert eval_loss().mean != first.mean
