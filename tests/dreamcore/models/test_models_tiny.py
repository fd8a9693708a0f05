"""Tiny model folders: written offline, reloadable with from_pretrained, runnable, seed-deterministic."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamcore.models import (
    TINY_MODEL_KINDS,
    is_complete_tiny_folder,
    load_pipeline,
    write_tiny_clip,
    write_tiny_clipseg,
    write_tiny_dino,
    write_tiny_family,
    write_tiny_flux,
    write_tiny_kolors,
    write_tiny_models,
    write_tiny_sd,
    write_tiny_sd3,
    write_tiny_sdxl,
    write_tiny_sdxl_refiner,
    write_tiny_taesd,
    write_tiny_taesd16,
)
from dreamcore.models.tiny import write_tiny_flux2_dev

WRITERS = {
    "sd": write_tiny_sd,
    "sdxl": write_tiny_sdxl,
    "sdxl-refiner": write_tiny_sdxl_refiner,
    "sd3": write_tiny_sd3,
    "flux": write_tiny_flux,
    "kolors": write_tiny_kolors,
    "taesd": write_tiny_taesd,
    "taesd16": write_tiny_taesd16,
    "clip": write_tiny_clip,
    "clipseg": write_tiny_clipseg,
    "dino": write_tiny_dino,
    "deepfloyd": lambda folder, seed: write_tiny_family(folder, "deepfloyd", seed),
    "deepfloyd-ii": lambda folder, seed: write_tiny_family(folder, "deepfloyd-ii", seed),
    "qwen_image": lambda folder, seed: write_tiny_family(folder, "qwen_image", seed),
    "chroma": lambda folder, seed: write_tiny_family(folder, "chroma", seed),
    "lumina2": lambda folder, seed: write_tiny_family(folder, "lumina2", seed),
    "z_image": lambda folder, seed: write_tiny_family(folder, "z_image", seed),
    "flux2": lambda folder, seed: write_tiny_family(folder, "flux2", seed),
    "flux2-dev": write_tiny_flux2_dev,
    "kontext": lambda folder, seed: write_tiny_family(folder, "kontext", seed),
}


def _image(size: int = 64) -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _weights(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.safetensors"))}


def _generator():
    import torch

    return torch.Generator().manual_seed(0)


def test_tiny_sd_generates_a_64px_image(tiny_models):
    pipe = load_pipeline(tiny_models["sd"])
    assert pipe.safety_checker is None
    assert (pipe.text_encoder.config.bos_token_id, pipe.text_encoder.config.eos_token_id) == (
        pipe.tokenizer.bos_token_id,
        pipe.tokenizer.eos_token_id,
    )
    images = pipe("a photo of sks dog", num_inference_steps=2, generator=_generator(), output_type="np").images
    assert images.shape == (1, 64, 64, 3)
    assert np.isfinite(images).all()


def test_tiny_sd_writes_v_prediction_scheduler(tmp_path):
    folder = write_tiny_sd(tmp_path / "sd-v", prediction_type="v_prediction")
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert config["prediction_type"] == "v_prediction"


def test_tiny_sdxl_generates_a_64px_image(tiny_models):
    pipe = load_pipeline(tiny_models["sdxl"])
    assert pipe.unet.config.cross_attention_dim == 64
    image = pipe("a photo of sks dog", num_inference_steps=2, generator=_generator()).images[0]
    assert image.size == (64, 64)


def test_tiny_sdxl_text_encoders_have_different_weights(tiny_models):
    first = (tiny_models["sdxl"] / "text_encoder" / "model.safetensors").read_bytes()
    second = (tiny_models["sdxl"] / "text_encoder_2" / "model.safetensors").read_bytes()
    assert first != second


def test_tiny_refiner_runs_img2img_with_aesthetic_score(tiny_models):
    pipe = load_pipeline(tiny_models["sdxl-refiner"])
    assert pipe.text_encoder is None and pipe.tokenizer is None
    assert pipe.config.requires_aesthetics_score
    result = pipe(
        "a photo of sks dog",
        image=_image(),
        strength=0.5,
        num_inference_steps=2,
        aesthetic_score=6.0,
        generator=_generator(),
    )
    assert result.images[0].size == (64, 64)


def test_tiny_taesd_matches_the_tiny_vae_latent_grid(tiny_models):
    import torch
    from diffusers import AutoencoderKL, AutoencoderTiny

    taesd = AutoencoderTiny.from_pretrained(tiny_models["taesd"])
    vae = AutoencoderKL.from_pretrained(tiny_models["sd"], subfolder="vae")
    pixels = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mean
        assert latents.shape == (1, 4, 32, 32)
        assert taesd.encode(pixels).latents.shape == latents.shape
        assert taesd.decode(latents).sample.shape == (1, 3, 64, 64)


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_tiny_transformer_pipelines_draw_offline_and_their_previews_decode(tiny_models, kind):
    import torch
    from diffusers import AutoencoderTiny

    pipe = load_pipeline(tiny_models[kind])
    assert len(pipe.tokenizer_3 if kind == "sd3" else pipe.tokenizer_2) >= 256  # the T5 tokenizer reloads whole
    image = pipe("a photo of sks dog", num_inference_steps=2, height=64, width=64, max_sequence_length=16,
                 generator=torch.Generator().manual_seed(0), output_type="pil").images[0]
    assert image.size == (64, 64)
    latents = pipe.vae.encode(torch.rand(1, 3, 64, 64) * 2 - 1).latent_dist.mean
    assert latents.shape == (1, 16, 32, 32)
    taesd = AutoencoderTiny.from_pretrained(tiny_models["taesd16"])
    assert taesd.decode(latents).sample.shape == (1, 3, 64, 64)


def test_tiny_clip_scores_texts_against_an_image(tiny_models):
    import torch
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(tiny_models["clip"])
    processor = CLIPProcessor.from_pretrained(tiny_models["clip"])
    assert len(processor.tokenizer) == 514
    inputs = processor(text=["a dog", "a cat"], images=[_image()], return_tensors="pt", padding=True)
    assert inputs["pixel_values"].shape == (1, 3, 32, 32)
    with torch.no_grad():
        logits = model(**inputs).logits_per_image
    assert logits.shape == (1, 2)


def test_tiny_clipseg_gives_mask_logits(tiny_models):
    import torch
    from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

    model = CLIPSegForImageSegmentation.from_pretrained(tiny_models["clipseg"])
    processor = CLIPSegProcessor.from_pretrained(tiny_models["clipseg"])
    prompts = ["dog", "the background"]
    inputs = processor(text=prompts, images=[_image()] * 2, return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (2, 32, 32)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("kind", TINY_MODEL_KINDS)
def test_same_seed_gives_identical_weights_and_other_seed_differs(kind, tiny_models, tmp_path):
    again = WRITERS[kind](tmp_path / "again", seed=0)
    other = WRITERS[kind](tmp_path / "other", seed=1)
    reference = _weights(tiny_models[kind])
    assert reference, f"no safetensors written for {kind}"
    assert _weights(again) == reference
    other_weights = _weights(other)
    assert other_weights.keys() == reference.keys()
    assert all(other_weights[name] != reference[name] for name in reference)


def test_writing_leaves_the_global_torch_rng_alone(tmp_path):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    write_tiny_taesd(tmp_path / "taesd", seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_write_tiny_models_skips_complete_folders_and_replaces_leftovers(tiny_models, tmp_path):
    import shutil

    root = tmp_path / "models"
    shutil.copytree(tiny_models["sd"].parent, root)
    stamps = {kind: (root / kind / ".dreamcore-tiny.json").stat().st_mtime_ns for kind in TINY_MODEL_KINDS}
    # A leftover without the completion marker, e.g. copied by hand or from an older writer.
    shutil.rmtree(root / "taesd")
    (root / "taesd").mkdir()
    (root / "taesd" / "config.json").write_text("{}")

    folders = write_tiny_models(root)

    assert set(folders) == set(TINY_MODEL_KINDS)
    assert all(is_complete_tiny_folder(folders[kind], kind) for kind in TINY_MODEL_KINDS)
    for kind in set(TINY_MODEL_KINDS) - {"taesd"}:
        assert (root / kind / ".dreamcore-tiny.json").stat().st_mtime_ns == stamps[kind], kind
    assert _weights(root / "taesd") == _weights(tiny_models["taesd"])
    assert not [p for p in root.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_writer_refuses_to_overwrite_a_foreign_folder(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "precious.txt").write_text("do not delete")
    with pytest.raises(FileExistsError, match="my-model"):
        write_tiny_taesd(folder)
    assert (folder / "precious.txt").exists()


def test_writer_replaces_its_own_folder_with_another_seed(tmp_path):
    folder = write_tiny_taesd(tmp_path / "taesd", seed=0)
    write_tiny_taesd(folder, seed=1)
    assert is_complete_tiny_folder(folder, "taesd", seed=1)
    assert not is_complete_tiny_folder(folder, "taesd", seed=0)


def test_tiny_kolors_draws_offline_with_its_sentencepiece_chatglm_tokenizer(tiny_models):
    import torch
    from diffusers import KolorsPipeline

    pipe = load_pipeline(tiny_models["kolors"])
    assert isinstance(pipe, KolorsPipeline) and len(pipe.tokenizer) == pipe.text_encoder.config.padded_vocab_size
    tokens = pipe.tokenizer(["a photo of sks dog", "ünïcode 文字"], padding="max_length", max_length=256)
    assert all(len(ids) == 256 for ids in tokens["input_ids"])
    assert pipe.tokenizer.decode(tokens["input_ids"][1]).endswith(" ünïcode 文字")  # byte fallback spells any text
    assert pipe.unet.config.encoder_hid_dim == pipe.text_encoder.config.hidden_size  # ChatGLM states, projected
    image = pipe("a photo of sks dog", num_inference_steps=2, height=64, width=64, generator=torch.Generator()
                 .manual_seed(0), output_type="pil").images[0]
    assert image.size == (64, 64)


def test_tiny_qwen_image_draws_offline_and_its_tokenizer_spells_the_template_prefix_as_qwens_does(tiny_models):
    """The trained Qwen2 BPE makes the prompt template's prefix 34 tokens, the count QwenImagePipeline drops (as
    Qwen's own tokenizer); any other text is spelled byte by byte."""
    import torch
    from diffusers import QwenImagePipeline

    pipe = load_pipeline(tiny_models["qwen_image"])
    assert isinstance(pipe, QwenImagePipeline)
    prefix = pipe.prompt_template_encode.split("{}")[0]
    assert len(pipe.tokenizer(prefix).input_ids) == pipe.prompt_template_encode_start_idx == 34
    tokens = pipe.tokenizer("ünïcode 文字").input_ids
    assert pipe.tokenizer.decode(tokens) == "ünïcode 文字"
    assert len(pipe.tokenizer) <= pipe.text_encoder.config.get_text_config().vocab_size
    image = pipe("a photo of sks dog", num_inference_steps=2, height=64, width=64, generator=torch.Generator()
                 .manual_seed(0), output_type="pil").images[0]
    assert image.size == (64, 64)


def test_tiny_chroma_draws_offline_from_t5_alone(tiny_models):
    import torch
    from diffusers import ChromaPipeline

    pipe = load_pipeline(tiny_models["chroma"])
    assert isinstance(pipe, ChromaPipeline)
    assert pipe.transformer.config.joint_attention_dim == pipe.text_encoder.config.d_model  # T5 states alone
    assert pipe.vae.config.latent_channels == 16 and not hasattr(pipe, "text_encoder_2")
    image = pipe("a photo of sks dog", num_inference_steps=2, height=64, width=64, max_sequence_length=32,
                 generator=torch.Generator().manual_seed(0), output_type="pil").images[0]
    assert image.size == (64, 64)


def test_tiny_lumina2_draws_offline_its_system_prompt_and_a_caption_in_64_gemma_tokens(tiny_models):
    import torch
    from diffusers import Lumina2Pipeline

    pipe = load_pipeline(tiny_models["lumina2"])
    assert isinstance(pipe, Lumina2Pipeline) and pipe.tokenizer.pad_token_id == 0  # Gemma's specials
    ids = pipe.tokenizer(f"{pipe.system_prompt} <Prompt Start> a photo of sks dog").input_ids
    assert len(ids) < 64 and pipe.tokenizer.unk_token_id not in ids
    image = pipe("a photo of sks dog", num_inference_steps=2, height=64, width=64, max_sequence_length=64,
                 generator=torch.Generator().manual_seed(0), output_type="pil").images[0]
    assert image.size == (64, 64)  # its 8x VAE: 8x8x16 latents


def test_tiny_z_image_draws_offline_with_its_qwen_tokenizer_and_chat_template(tiny_models):
    import torch
    from diffusers import ZImagePipeline

    pipe = load_pipeline(tiny_models["z_image"])
    assert isinstance(pipe, ZImagePipeline) and len(pipe.tokenizer) <= pipe.text_encoder.config.vocab_size
    turn = pipe.tokenizer.apply_chat_template([{"role": "user", "content": "a photo of sks dog"}], tokenize=False,
                                              add_generation_prompt=True, enable_thinking=True)
    assert turn == "<|im_start|>user\na photo of sks dog<|im_end|>\n<|im_start|>assistant\n"  # Qwen3's
    ids = pipe.tokenizer("ünïcode 文字").input_ids
    assert pipe.tokenizer.decode(ids) == "ünïcode 文字"  # byte-level: it spells any text
    assert len(pipe.tokenizer(" sks dog").input_ids) == 2  # the caption words are single tokens
    assert pipe.transformer.config.cap_feat_dim == pipe.text_encoder.config.hidden_size
    image = pipe("a photo of sks dog", num_inference_steps=2, height=64, width=64, generator=_generator(),
                 output_type="pil").images[0]
    assert image.size == (64, 64)
