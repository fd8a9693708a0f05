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

from dreamcore.models.families import family_named
from dreamcore.models.families.flux2.tiny import build_flux2_dev
from dreamcore.models.tiny_unets import PredictionType, clip_text_config
from dreamcore.models.tokenizer import byte_level_clip_tokenizer

TINY_MODEL_KINDS = ("sd", "sdxl", "sdxl-refiner", "sd3", "flux", "kolors", "deepfloyd", "deepfloyd-ii",
                    "qwen_image",
                    "chroma",
                    "lumina2",
                    "z_image",
                    "flux2", "flux2-dev",
                    "kontext",
                    "taesd",
                    "taesd16", "clip", "clipseg", "dino")
MARKER_FILE = ".dreamcore-tiny.json"
# Bump when a builder changes, so write_tiny_models rewrites folders made by an older recipe.
RECIPE_VERSION = 1


def write_tiny_sd(folder: str | Path, seed: int = 0, prediction_type: PredictionType = "epsilon") -> Path:
    """Write a tiny StableDiffusionPipeline folder (64 px images, 32x32x4 latents) and return it."""
    meta = {"kind": "sd", "seed": seed, "prediction_type": prediction_type}
    return _write_atomically(Path(folder), meta,
                             lambda tmp: _family_model("sd1", seed, prediction_type).save_pretrained(tmp))


def write_tiny_sdxl(folder: str | Path, seed: int = 0, prediction_type: PredictionType = "epsilon") -> Path:
    """Write a tiny StableDiffusionXLPipeline folder (two text encoders, text_time conditioning)."""
    meta = {"kind": "sdxl", "seed": seed, "prediction_type": prediction_type}
    return _write_atomically(Path(folder), meta,
                             lambda tmp: _family_model("sdxl", seed, prediction_type).save_pretrained(tmp))


def write_tiny_sdxl_refiner(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny SDXL refiner (StableDiffusionXLImg2ImgPipeline, text_encoder_2 only, aesthetic score)."""
    return write_tiny_family(folder, "sdxl-refiner", seed)


def write_tiny_family(folder: str | Path, name: str, seed: int = 0) -> Path:
    """Write the tiny pipeline folder of a family (its `tiny_model`, default options); the kind is its name."""
    return _write_atomically(Path(folder), {"kind": name, "seed": seed},
                             lambda tmp: _family_model(name, seed).save_pretrained(tmp))


def _family_model(name: str, seed: int, *options):
    """The tiny pipeline the family `name` builds (`ModelFamily.tiny_model`), seeded."""
    build = family_named(name).tiny_model
    if build is None:
        raise ValueError(f"the {name} family builds no tiny model; see TINY_MODEL_KINDS")
    return build(_seeder(seed), *options)


def write_tiny_sd3(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny StableDiffusion3Pipeline folder (MMDiT, CLIP-L + CLIP-G + T5, 64 px <-> 32x32x16 latents)."""
    return write_tiny_family(folder, "sd3", seed)


def write_tiny_flux(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny FluxPipeline folder (Flux.1-dev shape: guidance embedding, CLIP-L + T5, packed latents)."""
    return write_tiny_family(folder, "flux", seed)


def write_tiny_kolors(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny KolorsPipeline folder (ChatGLM3 + its sentencepiece tokenizer, SDXL-shaped UNet, 64 px)."""
    return write_tiny_family(folder, "kolors", seed)


def write_tiny_flux2_dev(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny Flux2Pipeline folder (Flux.2 dev's shape: Mistral-3 encoder, guidance embedding; the family's
    own tiny model, `flux2`, is klein's)."""
    return _write_atomically(Path(folder), {"kind": "flux2-dev", "seed": seed},
                             lambda tmp: build_flux2_dev(_seeder(seed)).save_pretrained(tmp))


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


# Kinds not here are families' own tiny pipelines under their names (ModelFamily.tiny_model): sdxl-refiner,
# sd3, flux, kolors. sd and sdxl take a prediction type (their kind is not a family name: sd is SD 1.x).
_WRITERS: dict[str, Callable[..., Path]] = {
    "sd": write_tiny_sd,
    "sdxl": write_tiny_sdxl,
    "taesd": write_tiny_taesd,
    "flux2-dev": write_tiny_flux2_dev,
    "taesd16": write_tiny_taesd16,
    "clip": write_tiny_clip,
    "clipseg": write_tiny_clipseg,
    "dino": write_tiny_dino,
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
        _WRITERS[kind](folder, seed=seed) if kind in _WRITERS else write_tiny_family(folder, kind, seed=seed)
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
        text_config=clip_text_config(tokenizer).to_dict(),
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
        text_config=clip_text_config(tokenizer).to_dict(),
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
