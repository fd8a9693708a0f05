"""Published model architectures with random weights, for benchmarks that need real proportions.

Nothing is downloaded: each component is built from the configuration its model card publishes
(Stable Diffusion 1.5, SDXL base 1.0) with random weights. Speed, memory and FLOPs depend on the
architecture, not on the weight values, so a random-weight SD 1.5 times like the real one; the
tiny test models do not (at their sizes framework overhead and small-kernel costs dominate a step).

`write_sd15_architecture(folder)` saves a loadable diffusers folder (~4.3 GB in fp32) for the
training benchmark (`write_architecture("sdxl", folder)` the SDXL one, for the GPU suite); `meta_components(name)` builds the same modules on the meta device (no memory,
no time) for FLOP counting.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

# Stable Diffusion 1.5 (runwayml/stable-diffusion-v1-5: unet, vae, text_encoder config.json).
SD15 = {
    "resolution": 512,
    "unet": dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280),
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                 attention_head_dim=8, cross_attention_dim=768),
    "vae": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
                block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.18215),
    # CLIP ViT-L/14's text tower.
    "text_encoders": [dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           projection_dim=768, vocab_size=49408, max_position_embeddings=77,
                           hidden_act="quick_gelu")],
}

# SDXL base 1.0 (stabilityai/stable-diffusion-xl-base-1.0).
SDXL = {
    "resolution": 1024,
    "unet": dict(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280),
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10),
                 cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
                 addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816),
    "vae": dict(SD15["vae"], sample_size=1024, scaling_factor=0.13025),
    # CLIP ViT-L/14 and OpenCLIP ViT-bigG/14 text towers.
    "text_encoders": [SD15["text_encoders"][0],
                      dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
                           projection_dim=1280, vocab_size=49408, max_position_embeddings=77, hidden_act="gelu")],
}

ARCHITECTURES = {"sd15": SD15, "sdxl": SDXL}
_MARKER = ".dreamcore-reference.json"


def meta_components(name: str):
    """(unet, vae, text encoders) of a published architecture on the meta device: shapes only."""
    import torch

    from dreamcore.models.tokenizer import byte_level_clip_tokenizer

    tokenizer = byte_level_clip_tokenizer()
    with torch.device("meta"):
        return _components(ARCHITECTURES[name], tokenizer)


def write_sd15_architecture(folder: str | Path, seed: int = 0) -> Path:
    """A StableDiffusionPipeline folder with SD 1.5's architecture and random weights (reused when complete)."""
    return write_architecture("sd15", folder, seed)


def write_architecture(name: str, folder: str | Path, seed: int = 0) -> Path:
    """A diffusers folder (StableDiffusionPipeline for sd15, StableDiffusionXLPipeline for sdxl) with the
    published architecture and random weights, reused when complete (SDXL: ~14 GB in fp32)."""
    import torch
    from diffusers import DDPMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    from dreamcore.models.tokenizer import byte_level_clip_tokenizer

    folder = Path(folder)
    marker = {"architecture": name, "seed": seed}
    if _read_marker(folder) == marker:
        return folder
    torch.manual_seed(seed)
    tokenizer = byte_level_clip_tokenizer()  # real CLIP BPE files are not available offline; speed is the same
    unet, vae, encoders = _components(ARCHITECTURES[name], tokenizer)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", clip_sample=False, steps_offset=1)
    if name == "sdxl":
        pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=encoders[0], text_encoder_2=encoders[1],
                                         tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    else:
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=encoders[0], tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}")
    pipe.save_pretrained(tmp)
    (tmp / _MARKER).write_text(json.dumps(marker))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)  # a folder under this name is complete
    return folder


def _components(spec: dict, tokenizer):
    """The modules of `spec`; the text encoders' special-token ids are the tokenizer's."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id)
    unet = UNet2DConditionModel(**spec["unet"])
    vae = AutoencoderKL(**spec["vae"])
    encoders = []
    for index, text in enumerate(spec["text_encoders"]):
        model_class = CLIPTextModelWithProjection if index == 1 else CLIPTextModel  # SDXL's second gives pooled
        encoders.append(model_class(CLIPTextConfig(**text, **ids)))
    return unet, vae, encoders


def _read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return None
