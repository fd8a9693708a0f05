"""What every added family's train tests check on its tiny model, shared by the family test files (Kolors,
Qwen-Image): its diffusers LoRA loads with the stock pipeline's `load_lora_weights` and changes its output, its
LyCORIS and full fine-tunes export and load, a crashed run resumes exactly."""

from __future__ import annotations

from safetensors.torch import load_file

from dreamcore.models import detect_family
from dreamcore.storage import ArtifactStore
from tests.dreamcore.train.test_train_dit_export import _train


def check_diffusers_lora(config, samples, root, stock_pipeline, generate, prediction_type: str) -> None:
    """Train 3 steps with EMA: the diffusers LoRA (and the EMA one: diffusers_lora only) loads in a fresh stock
    pipeline (`stock_pipeline()`), changes what `generate(pipe)` draws, holds only the denoiser's keys and the
    model card names the pipeline's loader."""
    family = detect_family(config.pretrained_model_name_or_path)
    store, result = _train(config, samples, root)
    assert result.details["family"] == family.name and result.details["prediction_type"] == prediction_type
    assert set(result.details["exports"]) == set(result.details["ema_exports"]) == {"diffusers_lora"}
    pipe = stock_pipeline()
    before = generate(pipe)
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"),
                           weight_name="pytorch_lora_weights.safetensors")
    assert abs(generate(pipe) - before).max() > 1e-3
    saved = load_file(store.path(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    assert saved and all(k.startswith(f"{family.denoiser}.") for k in saved)
    assert f"{family.pipeline_class}.load_lora_weights" in store.read_bytes(f"train/{result.key}/README.md").decode()


def check_lycoris_and_full(make_config, samples, root, stock_pipeline, generate, lycoris_file) -> None:
    """A LyCORIS LoKr applies to the stock pipeline's denoiser and changes its output; a full fine-tune's exported
    pipeline loads and draws differently from the base."""
    from lycoris import create_lycoris_from_weights

    spec = {"algo": "lokr", "linear_dim": 10000, "linear_alpha": 1, "factor": 4}
    config = make_config(max_train_steps=2, learning_rate=5e-2, lora_type="lycoris", lycoris_config=lycoris_file(spec))
    family = detect_family(config.pretrained_model_name_or_path)
    store, result = _train(config, samples, root / "lycoris")
    pipe = stock_pipeline()
    before = generate(pipe)
    network, _ = create_lycoris_from_weights(1.0, store.path(f"train/{result.key}/export/lycoris/lycoris.safetensors"),
                                             getattr(pipe, family.denoiser))
    network.apply_to()
    assert len(network.loras) == result.counts["wrapped_modules"]
    assert abs(generate(pipe) - before).max() > 1e-4

    config = make_config(max_train_steps=2, learning_rate=1e-3, model_type="full")
    store, result = _train(config, samples, root / "full")
    trained = type(pipe).from_pretrained(store.path(f"train/{result.key}/export/pipeline"))
    network.restore()
    assert abs(generate(trained) - generate(pipe)).max() > 1e-4


def check_resume_is_exact(make_config, samples, make_trainer, crash_and_resume, assert_resumed_exactly, root) -> None:
    """A crash after step 3 with checkpoints every 2 resumes at 2 and ends equal (EMA, accumulation, dropout)."""
    config = make_config(max_train_steps=4, checkpointing_steps=2, lora_dropout=0.1, use_ema=True,
                         lr_scheduler="cosine", lr_warmup_steps=1, gradient_accumulation_steps=2)
    straight = make_trainer(config, samples, store=ArtifactStore(str(root / "a")))
    straight_outcome = straight.train()
    resumed, outcome = crash_and_resume(config, samples)
    assert_resumed_exactly(straight, straight_outcome, resumed, outcome)

