"""Flux's tiny random pipeline for tests and the offline demo (sizes: docs/PLATFORM.md)."""

from __future__ import annotations

from collections.abc import Callable

from dreamcore.models.tiny_transformers import TEXT_WIDTH, tiny_clip, tiny_t5, tiny_vae16
from dreamcore.models.tokenizer import byte_level_clip_tokenizer, character_t5_tokenizer


def build_flux(seeded: Callable[[str, Callable[[], object]], object]):
    """A tiny FluxPipeline (Flux.1-dev shape: guidance embedding, CLIP-L pooled + T5, packed latents)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    clip, t5 = byte_level_clip_tokenizer(), character_t5_tokenizer()
    return FluxPipeline(
        transformer=seeded("transformer", lambda: FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=TEXT_WIDTH, pooled_projection_dim=TEXT_WIDTH,
            guidance_embeds=True, axes_dims_rope=(4, 6, 6))),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                  base_image_seq_len=256, max_image_seq_len=4096),
        vae=seeded("vae", lambda: tiny_vae16(scaling_factor=0.3611, shift_factor=0.1159)),
        text_encoder=seeded("text_encoder", lambda: tiny_clip(clip, TEXT_WIDTH, with_projection=False)),
        tokenizer=clip,
        text_encoder_2=seeded("text_encoder_2", lambda: tiny_t5(t5)),
        tokenizer_2=t5,
    )


def build_flux_kontext(seeded: Callable[[str, Callable[[], object]], object]):
    """A tiny FluxKontextPipeline: the tiny Flux components (the same seeds, so the same weights) under Kontext's
    pipeline class."""
    from diffusers import FluxKontextPipeline

    return FluxKontextPipeline(**build_flux(seeded).components)
