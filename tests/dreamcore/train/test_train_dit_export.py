"""SD3 and Flux exports through the train stage: the diffusers LoRA loads with stock `load_lora_weights` and
changes the output, the Flux LoRA in ComfyUI's layout (kohya sd-scripts' Flux keys) is the same update, LyCORIS
loads with create_lycoris_from_weights, a full fine-tune is a pipeline folder."""

from __future__ import annotations

import re

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.storage import ArtifactStore
from dreamcore.train.memory import InMemoryBatchSource
from dreamcore.train.plan import plan_training
from dreamcore.train.stage import train_stage
from tests.conftest import torch_threads

KINDS = ("sd3", "flux")
EXPORT_KINDS = (*KINDS, "flux2")  # Flux.2 (klein) exports too; its own checks are in test_train_flux2.py
# kohya sd-scripts' Flux LoRA keys: lora_unet_ + BFL module name (dots as underscores); ComfyUI maps these.
COMFYUI_FLUX_KEY = re.compile(
    r"^lora_unet_(double_blocks_\d+_(img|txt)_(attn_qkv|attn_proj|mlp_0|mlp_2|mod_lin)"
    r"|single_blocks_\d+_(linear1|linear2|modulation_lin)|final_layer_linear|img_in|txt_in)\.(lora_down\.weight|lora_up\.weight|alpha)$")


def _train(config, samples, root):
    store = ArtifactStore(str(root))
    source = InMemoryBatchSource(samples, config.train_batch_size, seed=0)
    with torch_threads(1):
        result = train_stage(plan_training(config, {"latents": "digest-1"}), store, source, show_progress=False)
    return store, result


def _generate(pipe):
    return pipe(prompt="a photo of sks toy", num_inference_steps=2, guidance_scale=1.0, height=64, width=64,
                max_sequence_length=32, output_type="np", generator=torch.Generator().manual_seed(0)).images


def _pipeline(tiny_models, kind):
    from dreamcore.models import load_pipeline

    return load_pipeline(tiny_models[kind])


@pytest.mark.parametrize("kind", EXPORT_KINDS)
def test_diffusers_lora_loads_into_the_stock_pipeline_and_changes_its_output(kind, make_dit_config, dit_samples,
                                                                             tiny_models, tmp_path):
    config = make_dit_config(kind, max_train_steps=3, lora_alpha=8, learning_rate=5e-2, use_ema=True)
    store, result = _train(config, dit_samples[kind], tmp_path)
    assert result.details["family"] == kind and result.details["prediction_type"] == "flow_matching"
    expected = {"sd3": {"diffusers_lora"}, "flux": {"diffusers_lora", "comfyui_lora"},
                "flux2": {"diffusers_lora"}}[kind]
    assert set(result.details["exports"]) == set(result.details["ema_exports"]) == expected
    pipe = _pipeline(tiny_models, kind)
    before = _generate(pipe)
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"),
                           weight_name="pytorch_lora_weights.safetensors")
    assert abs(_generate(pipe) - before).max() > 1e-3
    saved = load_file(store.path(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    assert all(k.startswith("transformer.") for k in saved)
    card = store.read_bytes(f"train/{result.key}/README.md").decode()
    assert f"{type(pipe).__name__}.load_lora_weights" in card


def test_flux_comfyui_lora_has_kohya_flux_keys_and_is_the_same_update(make_dit_config, dit_samples, tiny_models,
                                                                     tmp_path):
    from peft.utils import get_peft_model_state_dict

    from dreamcore.models.families.flux.comfyui import comfyui_flux_lora

    config = make_dit_config("flux", max_train_steps=2, lora_alpha=8, learning_rate=5e-2, flux_lora_target="all+ffs")
    store, result = _train(config, dit_samples["flux"], tmp_path)
    weights = load_file(store.path(f"train/{result.key}/export/comfyui/lora_comfyui.safetensors"))
    assert weights and all(COMFYUI_FLUX_KEY.match(k) for k in weights), [k for k in weights if not COMFYUI_FLUX_KEY.match(k)]
    assert "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight" in weights
    assert "lora_unet_single_blocks_0_linear1.lora_up.weight" in weights
    assert "lora_unet_final_layer_linear.lora_up.weight" in weights  # all+ffs's proj_out suffix reaches it
    assert weights["lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight"].shape == (12, 32)  # 3 parts x rank 4
    assert float(weights["lora_unet_double_blocks_0_img_attn_qkv.alpha"]) == 24.0  # alpha / rank stays 8 / 4
    assert float(weights["lora_unet_double_blocks_0_img_attn_proj.alpha"]) == 8.0

    # The fused update, split back by output rows, is each diffusers module's own update.
    pipe = _pipeline(tiny_models, "flux")
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"),
                           weight_name="pytorch_lora_weights.safetensors")
    state = get_peft_model_state_dict(pipe.transformer, adapter_name=next(iter(pipe.transformer.peft_config)))

    def delta(name):
        return state[f"{name}.lora_B.weight"] @ state[f"{name}.lora_A.weight"] * (8 / 4)

    def fused(key):
        return weights[f"{key}.lora_up.weight"] @ weights[f"{key}.lora_down.weight"] * (
            float(weights[f"{key}.alpha"]) / weights[f"{key}.lora_down.weight"].shape[0])

    qkv = fused("lora_unet_double_blocks_0_img_attn_qkv")
    parts = [delta(f"transformer_blocks.0.attn.{p}") for p in ("to_q", "to_k", "to_v")]
    assert torch.allclose(qkv, torch.cat(parts), atol=1e-6)
    linear1 = fused("lora_unet_single_blocks_0_linear1")
    parts = [delta(f"single_transformer_blocks.0.{p}") for p in ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")]
    assert torch.allclose(linear1, torch.cat(parts), atol=1e-6)
    assert comfyui_flux_lora(pipe.transformer, state, 8.0).keys() == weights.keys()


def test_flux_comfyui_lora_loads_through_the_kohya_flux_converter(make_dit_config, dit_samples, tiny_models,
                                                                  tmp_path):
    # diffusers' converter knows real Flux's single-block sizes only, so this run trains double blocks only.
    config = make_dit_config("flux", max_train_steps=2, lora_alpha=8, learning_rate=5e-2, flux_lora_target="context")
    store, result = _train(config, dit_samples["flux"], tmp_path)
    pipe = _pipeline(tiny_models, "flux")
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"),
                           weight_name="pytorch_lora_weights.safetensors")
    diffusers_output = _generate(pipe)
    pipe.unload_lora_weights()
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/comfyui/lora_comfyui.safetensors"))
    assert abs(_generate(pipe) - diffusers_output).max() < 1e-4


@pytest.mark.parametrize("kind", EXPORT_KINDS)
def test_lycoris_export_loads_with_create_lycoris_from_weights(kind, make_dit_config, dit_samples, tiny_models,
                                                               tmp_path, lycoris_file):
    from lycoris import create_lycoris_from_weights

    spec = {"algo": "lokr", "linear_dim": 10000, "linear_alpha": 1, "factor": 4}
    config = make_dit_config(kind, max_train_steps=2, learning_rate=5e-2, lora_type="lycoris",
                             lycoris_config=lycoris_file(spec))
    store, result = _train(config, dit_samples[kind], tmp_path)
    pipe = _pipeline(tiny_models, kind)
    before = _generate(pipe)
    network, _ = create_lycoris_from_weights(1.0, store.path(f"train/{result.key}/export/lycoris/lycoris.safetensors"),
                                             pipe.transformer)
    network.apply_to()
    assert len(network.loras) == result.counts["wrapped_modules"]
    assert abs(_generate(pipe) - before).max() > 1e-4


@pytest.mark.parametrize("kind", EXPORT_KINDS)
def test_full_fine_tune_exports_a_pipeline_folder(kind, make_dit_config, dit_samples, tiny_models, tmp_path):
    import diffusers

    config = make_dit_config(kind, max_train_steps=2, learning_rate=1e-3, model_type="full", use_ema=True,
                             ema_decay=0.5)
    store, result = _train(config, dit_samples[kind], tmp_path)
    pipe = _pipeline(tiny_models, kind)
    trained = getattr(diffusers, type(pipe).__name__).from_pretrained(
        store.path(f"train/{result.key}/export/pipeline"))
    assert abs(_generate(trained) - _generate(pipe)).max() > 1e-4
    ema = type(pipe.transformer).from_pretrained(store.path(f"train/{result.key}/export/ema/transformer"))
    assert sum(p.numel() for p in ema.parameters()) == sum(p.numel() for p in pipe.transformer.parameters())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model_type", ["lora", "full"])
def test_evaluation_applies_every_weights_set_to_the_transformer(kind, model_type, make_dit_config, dit_samples,
                                                                 tiny_models, tmp_path):
    from dreamcore.drawing.weights import applied, weights_of_training
    from dreamcore.models import family_named
    from dreamcore.models.families.denoisers import Conditioning

    config = make_dit_config(kind, max_train_steps=3, checkpointing_steps=2, learning_rate=5e-2, use_ema=True,
                             ema_decay=0.5, model_type=model_type)
    store, result = _train(config, dit_samples[kind], tmp_path)
    refs = weights_of_training(store, result)
    assert [r.name for r in refs] == ["base", "step-2", "final", "ema"]
    pipe = _pipeline(tiny_models, kind)
    family = family_named(kind)
    torch.manual_seed(0)
    noisy = torch.randn(1, 16, 32, 32)
    conditioning = Conditioning(torch.randn(1, 8, 32), torch.randn(1, 32), guidance=torch.ones(1))
    outputs = {}
    for ref in refs:
        with applied(pipe, ref, config, str(tiny_models[kind])) as ready, torch.no_grad():
            outputs[ref.name] = family.predict(ready.transformer, noisy, torch.tensor([500.0]), conditioning)
    with torch.no_grad():  # the base is back afterwards
        assert torch.equal(family.predict(pipe.transformer, noisy, torch.tensor([500.0]), conditioning), outputs["base"])
    for name in ("step-2", "final", "ema"):
        assert not torch.allclose(outputs[name], outputs["base"], atol=1e-5), name
    assert not torch.allclose(outputs["ema"], outputs["final"], atol=1e-6)


@pytest.mark.parametrize(("kind", "model_type", "export"), [("flux", "lora", "diffusers"), ("sd3", "full", "pipeline")])
def test_init_weights_start_from_a_previous_export(kind, model_type, export, make_dit_config, make_trainer,
                                                   dit_samples, tmp_path):
    from dreamcore.train.stage import training_fields

    config = make_dit_config(kind, max_train_steps=2, learning_rate=5e-2, model_type=model_type)
    store, result = _train(config, dit_samples[kind], tmp_path / "first")
    folder = store.path(f"train/{result.key}/export/{export}")
    trained = make_trainer(config.model_copy(update={"max_train_steps": 0}), dit_samples[kind],
                           store=ArtifactStore(str(tmp_path / "reference")))
    trained.adapter.load_trainable_state(load_file(
        store.path(f"train/{result.key}/checkpoints/step-00000002/trainable.safetensors")))
    follow_up = config.model_copy(update={"init_weights": folder})
    assert training_fields(follow_up)["init_weights"]  # by content
    started = make_trainer(follow_up, dit_samples[kind], store=ArtifactStore(str(tmp_path / "second")))
    a, b = trained.adapter.trainable_state(), started.adapter.trainable_state()
    assert a.keys() == b.keys() and all(torch.allclose(a[n], b[n], atol=1e-6) for n in a)
