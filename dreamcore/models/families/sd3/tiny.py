"""SD3's tiny random pipeline for tests and the offline demo (sizes: docs/PLATFORM.md)."""

from __future__ import annotations

from collections.abc import Callable

from dreamcore.models.tiny_transformers import TEXT_WIDTH, tiny_clip, tiny_t5, tiny_vae16
from dreamcore.models.tokenizer import byte_level_clip_tokenizer, character_t5_tokenizer


def build_sd3(seeded: Callable[[str, Callable[[], object]], object]):
    """A tiny StableDiffusion3Pipeline (MMDiT, CLIP-L + CLIP-G + T5); `seeded(component, build)` seeds each part."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    clip, t5 = byte_level_clip_tokenizer(), character_t5_tokenizer()
    return StableDiffusion3Pipeline(
        transformer=seeded("transformer", lambda: SD3Transformer2DModel(
            sample_size=32, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=8,
            num_attention_heads=4, joint_attention_dim=TEXT_WIDTH, caption_projection_dim=TEXT_WIDTH,
            pooled_projection_dim=TEXT_WIDTH, pos_embed_max_size=32)),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=seeded("vae", lambda: tiny_vae16(scaling_factor=1.5305, shift_factor=0.0609)),
        text_encoder=seeded("text_encoder", lambda: tiny_clip(clip, TEXT_WIDTH // 2, with_projection=True)),
        tokenizer=clip,
        text_encoder_2=seeded("text_encoder_2", lambda: tiny_clip(clip, TEXT_WIDTH // 2, with_projection=True)),
        tokenizer_2=clip,
        text_encoder_3=seeded("text_encoder_3", lambda: tiny_t5(t5)),
        tokenizer_3=t5,
    )
