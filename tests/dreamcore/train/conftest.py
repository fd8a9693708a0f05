"""Fixtures for the training tests: encoded demo samples of the tiny SD model, tiny configs, trainers."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def tiny_models_on_one_thread(one_torch_thread):
    """Every test here runs tiny models: one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def sd_samples(tiny_models, tmp_path_factory):
    """4 demo subject samples (with masks) + 2 regularisation samples, encoded by the tiny SD (32x32 latents)."""
    from dreamcore.train.memory import demo_samples

    return demo_samples(tiny_models["sd"], tmp_path_factory.mktemp("train-demo"))


@pytest.fixture
def make_config(tiny_models):
    """TrainingConfig factory: tiny SD, CPU fp32, batch 2, 4 steps, checkpoints every 2."""
    from dreamcore.config import TrainingConfig

    def make(**overrides) -> TrainingConfig:
        values = dict(pretrained_model_name_or_path=str(tiny_models["sd"]), model_family="sd1x",
                      mixed_precision="no", max_train_steps=4, checkpointing_steps=2, train_batch_size=2,
                      lora_rank=4, learning_rate=1e-3, optimizer="adamw", seed=0)
        return TrainingConfig(**(values | overrides))

    return make


@pytest.fixture
def make_trainer(tmp_path):
    """Trainer factory over an in-memory source of the given samples (checkpoints under tmp_path)."""
    from dreamcore.storage import ArtifactStore
    from dreamcore.train.memory import InMemoryBatchSource
    from dreamcore.train.trainer import Trainer, make_accelerator

    def make(config, samples, store=None, folder="train/test", **options):
        store = store or ArtifactStore(str(tmp_path / "artifacts"))
        source = InMemoryBatchSource(samples, config.train_batch_size, seed=0)
        return Trainer(config, store, folder, source, make_accelerator(config), show_progress=False,
                       **options).setup()

    return make


@pytest.fixture
def lycoris_file(tmp_path):
    """Write a lycoris_config JSON (SimpleTuner's shape) and return its path."""
    import json

    def write(spec: dict, name: str = "lycoris.json") -> str:
        path = tmp_path / name
        path.write_text(json.dumps(spec))
        return str(path)

    return write


# The sequence length the masked-text families' demo samples are encoded at (Lumina2's tiny tokenizer spells its
# system prompt in 32 tokens, a demo caption after it).
MASKED_TEXT_TOKENS = 64


@pytest.fixture(scope="session")
def masked_text_samples(tiny_models, tmp_path_factory):
    """family ("chroma", "lumina2") -> 4 subject samples (with masks) + 2 regularisation samples of its tiny model,
    encoded by its pipeline's encode_prompt at MASKED_TEXT_TOKENS tokens with the mask it attends through (built on
    first use)."""
    from dreamcore.train.memory import demo_samples

    built: dict[str, list] = {}

    def samples(family: str) -> list:
        if family not in built:
            built[family] = demo_samples(tiny_models[family], tmp_path_factory.mktemp(f"train-demo-{family}"),
                                         max_sequence_length=MASKED_TEXT_TOKENS)
        return built[family]

    return samples


@pytest.fixture
def masked_text_config(make_config, tiny_models):
    """TrainingConfig factory for a tiny Chroma or Lumina2 (CPU fp32, batch 2, 4 steps, checkpoints every 2)."""
    def make(family: str, **overrides):
        return make_config(**({"pretrained_model_name_or_path": str(tiny_models[family]), "model_family": family}
                              | overrides))

    return make


@pytest.fixture(scope="session")
def dit_samples(tiny_models, tmp_path_factory):
    """family kind ("sd3", "flux") -> 4 subject samples (with masks) + 2 regularisation samples of its tiny model.

    Encoded with the pipeline's own encode_prompt (T5 at 32 tokens) and its 16-channel VAE (32x32x16 latents).
    """
    from dreamcore.train.memory import demo_samples

    return {kind: demo_samples(tiny_models[kind], tmp_path_factory.mktemp(f"train-demo-{kind}"))
            for kind in ("sd3", "flux")}


@pytest.fixture
def make_dit_config(tiny_models):
    """TrainingConfig factory for a tiny SD3 or Flux: CPU fp32, batch 2, 4 steps, checkpoints every 2."""
    from dreamcore.config import TrainingConfig

    def make(kind: str, **overrides) -> TrainingConfig:
        values = dict(pretrained_model_name_or_path=str(tiny_models[kind]), model_family=kind,
                      mixed_precision="no", max_train_steps=4, checkpointing_steps=2, train_batch_size=2,
                      lora_rank=4, learning_rate=1e-3, optimizer="adamw", seed=0)
        return TrainingConfig(**(values | overrides))

    return make


@pytest.fixture
def crash_and_resume(make_trainer, tmp_path):
    """run(config, samples, folder="b") -> (resumed trainer, its outcome): a run that crashed after step 3 (its
    checkpoint is step 2), resumed in a fresh trainer on the same store."""
    from dreamcore.storage import ArtifactStore

    def run(config, samples, folder: str = "b"):
        def crash(entry):
            if entry["step"] == 3:
                raise RuntimeError("simulated crash")

        store = ArtifactStore(str(tmp_path / folder))
        crashing = make_trainer(config, samples, store=store, on_step=crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            crashing.train()
        resumed = make_trainer(config, samples, store=ArtifactStore(str(tmp_path / folder)))
        return resumed, resumed.train()

    return run


@pytest.fixture
def assert_resumed_exactly():
    """check(straight, straight_outcome, resumed, outcome): a run resumed from its step-2 checkpoint ends
    where the uninterrupted run ends (weights, losses, EMA)."""
    return _assert_resumed_exactly


def _assert_resumed_exactly(straight, straight_outcome, resumed, outcome) -> None:
    import torch

    assert outcome.resumed_from == 2 and outcome.steps_run == 2
    a, b = straight.adapter.trainable_state(), resumed.adapter.trainable_state()
    assert all(torch.allclose(a[name], b[name], atol=1e-6) for name in a)
    assert [e["loss"] for e in outcome.history] == pytest.approx([e["loss"] for e in straight_outcome.history])
    ema_a, ema_b = straight.ema.shadow_state(), resumed.ema.shadow_state()
    assert all(torch.allclose(ema_a[name], ema_b[name], atol=1e-6) for name in ema_a)
