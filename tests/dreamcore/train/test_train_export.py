"""The train stage end to end: exports that stock loaders accept, the model card, rerun = no work."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.storage import ArtifactStore
from dreamcore.train.memory import InMemoryBatchSource
from dreamcore.train.plan import plan_training
from dreamcore.train.stage import train_stage
from tests.conftest import torch_threads

LOCON = {"algo": "locon", "multiplier": 1.0, "linear_dim": 4, "linear_alpha": 2, "conv_dim": 2, "conv_alpha": 1,
         "apply_preset": {"target_module": ["Transformer2DModel", "ResnetBlock2D"]}}


def _run(config, samples, root, **options):
    store = ArtifactStore(str(root))
    source = InMemoryBatchSource(samples, config.train_batch_size, seed=0)
    return store, train_stage(plan_training(config, {"latents": "digest-1"}), store, source, show_progress=False, **options)


def _generate(pipe):
    return pipe("a photo of sks toy", num_inference_steps=2, guidance_scale=1.0, height=64, width=64,
                output_type="np", generator=torch.Generator().manual_seed(0)).images


@pytest.fixture(scope="module")
def lora_run(tiny_models, sd_samples, tmp_path_factory):
    from dreamcore.config import TrainingConfig

    config = TrainingConfig(pretrained_model_name_or_path=str(tiny_models["sd"]), model_family="sd1x",
                            mixed_precision="no", max_train_steps=3, checkpointing_steps=2, train_batch_size=2,
                            lora_rank=4, lora_alpha=8, learning_rate=5e-2, optimizer="adamw", use_ema=True)
    with torch_threads(1):
        store, result = _run(config, sd_samples, tmp_path_factory.mktemp("lora-run"))
    return config, store, result


def test_exported_lora_loads_into_a_fresh_stock_pipeline_and_changes_its_output(lora_run, tiny_models):
    from diffusers import StableDiffusionPipeline

    _, store, result = lora_run
    folder = store.path(f"train/{result.key}/export/diffusers")
    pipe = StableDiffusionPipeline.from_pretrained(tiny_models["sd"], safety_checker=None,
                                                   requires_safety_checker=False)
    before = _generate(pipe)
    pipe.load_lora_weights(folder, weight_name="pytorch_lora_weights.safetensors")
    with_lora = _generate(pipe)
    assert abs(with_lora - before).max() > 1e-3
    pipe.unload_lora_weights()
    kohya = store.path(f"train/{result.key}/export/kohya/lora_kohya.safetensors")
    pipe.load_lora_weights(kohya)  # the kohya/ComfyUI file, through diffusers' kohya converter
    assert abs(_generate(pipe) - with_lora).max() < 1e-4  # same weights, same alpha scaling


def test_kohya_file_has_lora_unet_keys_and_the_trained_alpha(lora_run):
    config, store, result = lora_run
    weights = load_file(store.path(f"train/{result.key}/export/kohya/lora_kohya.safetensors"))
    downs = [k for k in weights if k.endswith(".lora_down.weight")]
    assert len(downs) == result.counts["wrapped_modules"] == 32
    assert all(k.startswith("lora_unet_") for k in weights)
    assert {float(v) for k, v in weights.items() if k.endswith(".alpha")} == {8.0}
    assert "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight" in weights


def test_ema_lora_is_exported_beside_the_raw_one_and_differs(lora_run):
    _, store, result = lora_run
    raw = load_file(store.path(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    ema = load_file(store.path(f"train/{result.key}/export/ema/diffusers/pytorch_lora_weights.safetensors"))
    assert raw.keys() == ema.keys()
    assert any(not torch.allclose(raw[k], ema[k]) for k in raw)
    assert set(result.details["ema_exports"]) == {"diffusers_lora", "kohya_lora"}


def test_model_card_and_report(lora_run):
    _, store, result = lora_run
    card = store.read_bytes(f"train/{result.key}/README.md").decode()
    assert "| `lora_rank` | `4` |" in card and "| `learning_rate` | `0.05` |" in card
    assert "load_lora_weights" in card
    report = store.read_json(f"train/{result.key}/report.json")
    assert [e["step"] for e in report["history"]] == [1, 2, 3]
    assert report["final_loss"] == result.details["final_loss"] == report["history"][-1]["loss"]
    assert result.counts == {"steps": 3, "wrapped_modules": 32, "checkpoints": 2}


def test_rerun_after_completion_does_no_work(lora_run, sd_samples):
    config, store, result = lora_run
    steps = []
    again = train_stage(plan_training(config, {"latents": "digest-1"}), store, InMemoryBatchSource(sd_samples, 2),
                        on_step=steps.append, show_progress=False)
    assert again == result and steps == []
    other = config.model_copy(update={"max_train_steps": 4})
    from dreamcore.train.stage import train_key

    assert train_key(other, {"latents": "digest-1"}) != result.key
    assert train_key(config, {"latents": "digest-2"}) != result.key


def test_checkpoint_and_validation_settings_reuse_the_committed_training(lora_run, sd_samples):
    config, store, result = lora_run
    steps = []
    edited = config.model_copy(update={"checkpointing_steps": 1, "checkpoints_total_limit": 1, "validation_steps": 1,
                                       "validation_prompt": "another prompt", "validation_preview": True})
    again = train_stage(plan_training(edited, {"latents": "digest-1"}), store, InMemoryBatchSource(sd_samples, 2),
                        on_step=steps.append, show_progress=False)
    assert again == result and steps == []


def test_rerun_after_a_crash_resumes_from_the_newest_checkpoint(make_config, sd_samples, tmp_path):
    config = make_config(max_train_steps=4, checkpointing_steps=2)

    def crash(entry):
        if entry["step"] == 3:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        _run(config, sd_samples, tmp_path, on_step=crash)
    store, result = _run(config, sd_samples, tmp_path)
    report = store.read_json(f"train/{result.key}/report.json")
    assert report["resumed_from"] == 2 and report["steps"] == 4


def test_lycoris_export_loads_with_lycoris_own_loader(make_config, lycoris_file, sd_samples, tiny_models, tmp_path):
    from diffusers import UNet2DConditionModel
    from lycoris import create_lycoris_from_weights

    config = make_config(lora_type="lycoris", lycoris_config=lycoris_file(LOCON), max_train_steps=2,
                         learning_rate=5e-2)
    store, result = _run(config, sd_samples, tmp_path)
    file = store.path(f"train/{result.key}/export/lycoris/lycoris.safetensors")
    unet = UNet2DConditionModel.from_pretrained(tiny_models["sd"], subfolder="unet")
    noisy, t, embeds = torch.randn(1, 4, 32, 32), torch.tensor([400]), sd_samples[0].prompt_embeds
    with torch.no_grad():
        base = unet(noisy, t, embeds).sample
        network, _ = create_lycoris_from_weights(1.0, file, unet)
        network.apply_to()
        loaded = unet(noisy, t, embeds).sample
    assert len(network.loras) == result.counts["wrapped_modules"] > 0
    saved = load_file(file)
    assert all(torch.equal(v, saved[k]) for k, v in network.state_dict().items() if k in saved)
    assert (loaded - base).abs().max() > 1e-4


def test_full_fine_tune_exports_a_diffusers_folder(make_config, sd_samples, tiny_models, tmp_path):
    from diffusers import StableDiffusionPipeline

    config = make_config(model_type="full", max_train_steps=1, use_ema=True)
    store, result = _run(config, sd_samples, tmp_path)
    pipe = StableDiffusionPipeline.from_pretrained(store.path(f"train/{result.key}/export/pipeline"))
    base = StableDiffusionPipeline.from_pretrained(tiny_models["sd"])
    changed = [n for n, p in pipe.unet.named_parameters() if not torch.equal(p, base.unet.state_dict()[n])]
    assert changed  # the exported UNet is the trained one
    assert store.exists(f"train/{result.key}/export/ema/unet/diffusion_pytorch_model.safetensors")


def test_sdxl_lora_export_loads_into_a_stock_sdxl_pipeline(make_config, tiny_models, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    from dreamcore.train.memory import demo_samples

    samples = demo_samples(tiny_models["sdxl"], tmp_path / "demo-xl", subjects=2, regularisation=0, masks=False)
    config = make_config(pretrained_model_name_or_path=str(tiny_models["sdxl"]), model_family="sdxl",
                         max_train_steps=2, learning_rate=5e-2)
    store, result = _run(config, samples, tmp_path / "xl")
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_models["sdxl"])
    before = _generate(pipe)
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"))
    assert abs(_generate(pipe) - before).max() > 1e-4
