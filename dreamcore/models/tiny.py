"""Tiny random-weight model folders for tests and offline demos.

Each `write_tiny_*` builds a model (or whole pipeline) from a config, seeded so the same seed
gives byte-identical safetensors files, and saves it with `save_pretrained`, so the folder loads
with the ordinary diffusers / transformers `from_pretrained(folder)` like a real checkpoint.
Folders are written to a temporary sibling and renamed into place, so a folder that exists
is complete; a marker file records what was written (kind, seed, options).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from dreamcore.models.families import family_named
from dreamcore.models.tokenizer import byte_level_clip_tokenizer

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

TINY_MODEL_KINDS = ("sd", "sdxl", "sdxl-refiner", "sd3", "flux", "taesd", "taesd16", "clip", "clipseg", "dino",
                    "deepfloyd",
                    )
MARKER_FILE = ".dreamcore-tiny.json"
# Bump when a builder changes, so write_tiny_models rewrites folders made by an older recipe.
RECIPE_VERSION = 1

PredictionType = Literal["epsilon", "v_prediction"]

# Sizes shared by the tiny models (see docs/PLATFORM.md, "Tiny models").
_TEXT_HIDDEN = 32
_TIME_EMBED_DIM = 8


def write_tiny_sd(folder: str | Path, seed: int = 0, prediction_type: PredictionType = "epsilon") -> Path:
    """Write a tiny StableDiffusionPipeline folder (64 px images, 32x32x4 latents) and return it."""
    meta = {"kind": "sd", "seed": seed, "prediction_type": prediction_type}
    return _write_atomically(Path(folder), meta, lambda tmp: _build_sd(seed, prediction_type).save_pretrained(tmp))


def write_tiny_sdxl(folder: str | Path, seed: int = 0, prediction_type: PredictionType = "epsilon") -> Path:
    """Write a tiny StableDiffusionXLPipeline folder (two text encoders, text_time conditioning)."""
    meta = {"kind": "sdxl", "seed": seed, "prediction_type": prediction_type}
    return _write_atomically(Path(folder), meta, lambda tmp: _build_sdxl(seed, prediction_type).save_pretrained(tmp))


def write_tiny_sdxl_refiner(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny SDXL refiner (StableDiffusionXLImg2ImgPipeline, text_encoder_2 only, aesthetic score)."""
    meta = {"kind": "sdxl-refiner", "seed": seed}
    return _write_atomically(Path(folder), meta, lambda tmp: _build_sdxl_refiner(seed).save_pretrained(tmp))


def write_tiny_family(folder: str | Path, name: str, seed: int = 0) -> Path:
    """Write the tiny pipeline folder a family builds itself (its `tiny_model`); the kind is its name."""
    build = family_named(name).tiny_model
    if build is None:
        raise ValueError(f"the {name} family builds no tiny model of its own; see TINY_MODEL_KINDS")
    return _write_atomically(Path(folder), {"kind": name, "seed": seed},
                             lambda tmp: build(_seeder(seed)).save_pretrained(tmp))


def write_tiny_sd3(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny StableDiffusion3Pipeline folder (MMDiT, CLIP-L + CLIP-G + T5, 64 px <-> 32x32x16 latents)."""
    return write_tiny_family(folder, "sd3", seed)


def write_tiny_flux(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny FluxPipeline folder (Flux.1-dev shape: guidance embedding, CLIP-L + T5, packed latents)."""
    return write_tiny_family(folder, "flux", seed)


def write_tiny_taesd16(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny 16-channel AutoencoderTiny: the preview decoder of the SD3 and Flux tiny models."""
    meta = {"kind": "taesd16", "seed": seed}
    return _write_atomically(Path(folder), meta, lambda tmp: _build_taesd(seed, 16).save_pretrained(tmp))


def write_tiny_taesd(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny AutoencoderTiny whose latent grid matches the tiny VAE's (64 px <-> 32x32x4)."""
    meta = {"kind": "taesd", "seed": seed}
    return _write_atomically(Path(folder), meta, lambda tmp: _build_taesd(seed).save_pretrained(tmp))


def write_tiny_clip(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny CLIPModel (32 px images, patch 8) and its CLIPProcessor into one folder."""
    meta = {"kind": "clip", "seed": seed}
    return _write_atomically(Path(folder), meta, lambda tmp: _save_with_processor(tmp, *_build_clip(seed)))


def write_tiny_clipseg(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny CLIPSegForImageSegmentation (32 px, 32x32 mask logits) and its CLIPSegProcessor."""
    meta = {"kind": "clipseg", "seed": seed}
    return _write_atomically(Path(folder), meta, lambda tmp: _save_with_processor(tmp, *_build_clipseg(seed)))


def write_tiny_dino(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny ViTModel (32 px images, patch 8, no pooler: DINO's feature is the CLS token) and its
    image processor, as a stand-in for DINO ViT-S/16 (facebook/dino-vits16)."""
    meta = {"kind": "dino", "seed": seed}
    return _write_atomically(Path(folder), meta, lambda tmp: _save_with_processor(tmp, *_build_dino(seed)))


_WRITERS: dict[str, Callable[..., Path]] = {
    "sd": write_tiny_sd,
    "sdxl": write_tiny_sdxl,
    "sdxl-refiner": write_tiny_sdxl_refiner,
    "sd3": write_tiny_sd3,
    "flux": write_tiny_flux,
    "taesd": write_tiny_taesd,
    "taesd16": write_tiny_taesd16,
    "clip": write_tiny_clip,
    "clipseg": write_tiny_clipseg,
    "dino": write_tiny_dino,
    "deepfloyd": lambda folder, seed=0: write_tiny_family(folder, "deepfloyd", seed),
}


def write_tiny_models(root: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write every tiny model under root/<kind>, skipping folders already complete; return kind -> folder."""
    folders = {kind: Path(root) / kind for kind in TINY_MODEL_KINDS}
    for kind, folder in folders.items():
        if is_complete_tiny_folder(folder, kind, seed):
            continue
        if _is_foreign(folder):
            # root is dreamcore's own tiny-model directory: an unmarked folder there is a leftover.
            shutil.rmtree(folder)
        _WRITERS[kind](folder, seed=seed)
    return folders


def is_complete_tiny_folder(folder: str | Path, kind: str, seed: int = 0) -> bool:
    """True when `folder` holds a fully written tiny model of `kind` (default options) from `seed`."""
    marker = _read_marker(Path(folder))
    if marker is None:
        return False
    default_options = {"prediction_type": "epsilon"} if kind in ("sd", "sdxl") else {}
    expected = {"kind": kind, "seed": seed, **default_options, "recipe_version": RECIPE_VERSION}
    return marker == expected


# ---------------------------------------------------------------- writing folders atomically


def _write_atomically(folder: Path, meta: dict, save: Callable[[Path], object]) -> Path:
    """Save into a temporary sibling, add the marker, then rename it to `folder`."""
    if _is_foreign(folder):
        raise FileExistsError(
            f"{folder} exists and is not a tiny model folder written by dreamcore; "
            "refusing to overwrite it: choose an empty or new folder"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    marker = {**meta, "recipe_version": RECIPE_VERSION}
    try:
        save(tmp)
        (tmp / MARKER_FILE).write_text(json.dumps(marker, sort_keys=True) + "\n")
        _replace_folder(tmp, folder, marker)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _replace_folder(tmp: Path, folder: Path, marker: dict) -> None:
    """Rename `tmp` to `folder`; an old `folder` is first renamed aside, so no half-deleted
    folder ever sits at the final path with its marker still in it."""
    if _read_marker(folder) == marker:
        return  # the same seed and recipe is already there (another process): it is identical
    if folder.exists():
        trash = tmp.with_name(tmp.name + "-old")
        os.rename(folder, trash)
        shutil.rmtree(trash)
    try:
        os.rename(tmp, folder)
    except OSError:
        # Another process renamed the same model into place first; theirs is as good as ours.
        if _read_marker(folder) != marker:
            raise


def _is_foreign(folder: Path) -> bool:
    """A non-empty folder that dreamcore did not write (no marker): never overwritten."""
    return folder.is_dir() and _read_marker(folder) is None and any(folder.iterdir())


def _read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return None


def _save_with_processor(folder: Path, model, processor) -> None:
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


# ---------------------------------------------------------------- seeding


def _seeder(seed: int) -> Callable[[str, Callable[[], object]], object]:
    """`_seeded` for one seed: what the families' tiny builders take (`ModelFamily.tiny_model`)."""
    return lambda component, build: _seeded(seed, component, build)


def _seeded(seed: int, component: str, build: Callable[[], object]):
    """Build one component under its own seed, derived from (seed, component name).

    Per-component seeds keep weights independent of build order and make SDXL's two text
    encoders differ; fork_rng leaves the caller's global torch RNG state untouched.
    """
    import torch

    digest = hashlib.sha256(f"{seed}:{component}".encode()).digest()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int.from_bytes(digest[:8], "little") >> 1)
        return build()


# ---------------------------------------------------------------- component builders


def _text_config(tokenizer: CLIPTokenizer, **overrides):
    from transformers import CLIPTextConfig

    settings = dict(
        vocab_size=len(tokenizer),
        hidden_size=_TEXT_HIDDEN,
        intermediate_size=37,
        projection_dim=_TEXT_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        # Must match the tokenizer: the pooled output is read at the first EOS position.
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextConfig(**{**settings, **overrides})


def _vision_config(**overrides):
    from transformers import CLIPVisionConfig

    settings = dict(
        hidden_size=32,
        intermediate_size=37,
        projection_dim=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
    )
    return CLIPVisionConfig(**{**settings, **overrides})


def _text_encoder(seed: int, component: str, tokenizer: CLIPTokenizer, with_projection: bool = False):
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    model_class = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    config = _text_config(tokenizer)
    return _seeded(seed, component, lambda: model_class(config))


def _unet(seed: int, cross_attention_dim: int, **extra):
    from diffusers import UNet2DConditionModel

    return _seeded(
        seed,
        "unet",
        lambda: UNet2DConditionModel(
            sample_size=32,
            in_channels=4,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=8,
            cross_attention_dim=cross_attention_dim,
            **extra,
        ),
    )


def _sdxl_unet(seed: int, cross_attention_dim: int, time_ids: int):
    """SDXL conditioning: pooled text embedding (32) + `time_ids` Fourier-embedded size/crop ids."""
    return _unet(
        seed,
        cross_attention_dim,
        addition_embed_type="text_time",
        addition_time_embed_dim=_TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=time_ids * _TIME_EMBED_DIM + _TEXT_HIDDEN,
        use_linear_projection=True,
    )


def _vae(seed: int, scaling_factor: float):
    from diffusers import AutoencoderKL

    return _seeded(
        seed,
        "vae",
        lambda: AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            block_out_channels=(32, 64),
            latent_channels=4,
            sample_size=64,
            scaling_factor=scaling_factor,
        ),
    )


def _scheduler(prediction_type: PredictionType):
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        steps_offset=1,
        timestep_spacing="leading",
        prediction_type=prediction_type,
    )


def _build_sd(seed: int, prediction_type: PredictionType):
    from diffusers import StableDiffusionPipeline

    tokenizer = byte_level_clip_tokenizer()
    return StableDiffusionPipeline(
        vae=_vae(seed, scaling_factor=0.18215),
        text_encoder=_text_encoder(seed, "text_encoder", tokenizer),
        tokenizer=tokenizer,
        unet=_unet(seed, cross_attention_dim=_TEXT_HIDDEN),
        scheduler=_scheduler(prediction_type),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _build_sdxl(seed: int, prediction_type: PredictionType):
    from diffusers import StableDiffusionXLPipeline

    tokenizer = byte_level_clip_tokenizer()
    return StableDiffusionXLPipeline(
        vae=_vae(seed, scaling_factor=0.13025),
        text_encoder=_text_encoder(seed, "text_encoder", tokenizer),
        text_encoder_2=_text_encoder(seed, "text_encoder_2", tokenizer, with_projection=True),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        # Both encoders' penultimate hidden states are concatenated: 32 + 32.
        unet=_sdxl_unet(seed, cross_attention_dim=2 * _TEXT_HIDDEN, time_ids=6),
        scheduler=_scheduler(prediction_type),
        add_watermarker=False,
    )


def _build_sdxl_refiner(seed: int):
    from diffusers import StableDiffusionXLImg2ImgPipeline

    tokenizer = byte_level_clip_tokenizer()
    return StableDiffusionXLImg2ImgPipeline(
        vae=_vae(seed, scaling_factor=0.13025),
        text_encoder=None,
        text_encoder_2=_text_encoder(seed, "text_encoder_2", tokenizer, with_projection=True),
        tokenizer=None,
        tokenizer_2=tokenizer,
        # Time ids: original size (2), crop (2), aesthetic score (1) instead of a target size.
        unet=_sdxl_unet(seed, cross_attention_dim=_TEXT_HIDDEN, time_ids=5),
        scheduler=_scheduler("epsilon"),
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
        add_watermarker=False,
    )


def _build_taesd(seed: int, latent_channels: int = 4):
    from diffusers import AutoencoderTiny

    # EncoderTiny/DecoderTiny need equal channels across blocks; each block after the first
    # halves (encoder) or doubles (decoder) the size, so two blocks give the VAE's 2x grid.
    return _seeded(
        seed,
        "taesd" if latent_channels == 4 else f"taesd{latent_channels}",
        lambda: AutoencoderTiny(
            encoder_block_out_channels=(16, 16),
            decoder_block_out_channels=(16, 16),
            num_encoder_blocks=(1, 1),
            num_decoder_blocks=(1, 1),
            latent_channels=latent_channels,
            upsampling_scaling_factor=2,
        ),
    )


def _clip_image_processor():
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    # The PIL processor directly: the default class wants torchvision and warns without it.
    return CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


def _build_clip(seed: int):
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor

    tokenizer = byte_level_clip_tokenizer()
    config = CLIPConfig(
        text_config=_text_config(tokenizer).to_dict(),
        vision_config=_vision_config().to_dict(),
        projection_dim=32,
    )
    model = _seeded(seed, "clip", lambda: CLIPModel(config))
    return model, CLIPProcessor(image_processor=_clip_image_processor(), tokenizer=tokenizer)


def _build_clipseg(seed: int):
    from transformers import (
        CLIPSegConfig,
        CLIPSegForImageSegmentation,
        CLIPSegProcessor,
    )
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    tokenizer = byte_level_clip_tokenizer()
    config = CLIPSegConfig(
        text_config=_text_config(tokenizer).to_dict(),
        # The decoder reads hidden_states[layer + 1] for each extract layer: 3 layers for [1, 2].
        vision_config=_vision_config(num_hidden_layers=3).to_dict(),
        projection_dim=32,
        extract_layers=[1, 2],
        reduce_dim=16,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )
    model = _seeded(seed, "clipseg", lambda: CLIPSegForImageSegmentation(config))
    image_processor = ViTImageProcessorPil(
        size={"height": 32, "width": 32},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    return model, CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _build_dino(seed: int):
    from transformers import ViTConfig, ViTModel
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    config = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                       image_size=32, patch_size=8)
    model = _seeded(seed, "dino", lambda: ViTModel(config, add_pooling_layer=False))
    # DINO's preprocessing: ImageNet mean and std.
    processor = ViTImageProcessorPil(size={"height": 32, "width": 32}, image_mean=[0.485, 0.456, 0.406],
                                     image_std=[0.229, 0.224, 0.225])
    return model, processor
