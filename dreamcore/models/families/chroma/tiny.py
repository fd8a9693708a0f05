"""Chroma's tiny random pipeline for tests and the offline demo (Flux's tiny VAE, T5 and sizes: docs/PLATFORM.md)."""

from __future__ import annotations

from collections.abc import Callable

from dreamcore.models.tiny_transformers import TEXT_WIDTH, tiny_t5, tiny_vae16
from dreamcore.models.tokenizer import character_t5_tokenizer


def build_chroma(seeded: Callable[[str, Callable[[], object]], object]):
    """A tiny ChromaPipeline (Chroma1 shape: T5 only, no pooled text, no guidance embedding, packed latents)."""
    from diffusers import ChromaPipeline, ChromaTransformer2DModel, FlowMatchEulerDiscreteScheduler

    t5 = character_t5_tokenizer()
    return ChromaPipeline(
        transformer=seeded("transformer", lambda: ChromaTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=TEXT_WIDTH, axes_dims_rope=(4, 6, 6),
            approximator_num_channels=16, approximator_hidden_dim=32, approximator_layers=1)),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                  base_image_seq_len=256, max_image_seq_len=4096),
        vae=seeded("vae", lambda: tiny_vae16(scaling_factor=0.3611, shift_factor=0.1159)),  # Flux's VAE
        text_encoder=seeded("text_encoder", lambda: tiny_t5(t5)),
        tokenizer=t5,
    )
