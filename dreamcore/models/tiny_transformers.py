"""Tiny random-weight SD3 and Flux pipelines: diffusion transformers with CLIP and T5 text encoders.

Sizes from docs/PLATFORM.md ("SD3 and Flux on tiny offline models"): 64 px images, a 16-channel
VAE with each family's scaling and shift (32x32x16 latents), 2-layer encoders 32 wide (SD3's two
CLIPs 16 wide each, so their widths add up to the T5's), flow-matching Euler schedulers.
"""

from __future__ import annotations

from collections.abc import Callable

from dreamcore.models.tokenizer import byte_level_clip_tokenizer, character_t5_tokenizer

_WIDTH = 32


def build_sd3(seeded: Callable[[str, Callable[[], object]], object]):
    """A tiny StableDiffusion3Pipeline (MMDiT, CLIP-L + CLIP-G + T5); `seeded(component, build)` seeds each part."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    clip, t5 = byte_level_clip_tokenizer(), character_t5_tokenizer()
    return StableDiffusion3Pipeline(
        transformer=seeded("transformer", lambda: SD3Transformer2DModel(
            sample_size=32, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=8,
            num_attention_heads=4, joint_attention_dim=_WIDTH, caption_projection_dim=_WIDTH,
            pooled_projection_dim=_WIDTH, pos_embed_max_size=32)),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=seeded("vae", lambda: _vae(scaling_factor=1.5305, shift_factor=0.0609)),
        text_encoder=seeded("text_encoder", lambda: _clip(clip, _WIDTH // 2, with_projection=True)),
        tokenizer=clip,
        text_encoder_2=seeded("text_encoder_2", lambda: _clip(clip, _WIDTH // 2, with_projection=True)),
        tokenizer_2=clip,
        text_encoder_3=seeded("text_encoder_3", lambda: _t5(t5)),
        tokenizer_3=t5,
    )


def build_flux(seeded: Callable[[str, Callable[[], object]], object]):
    """A tiny FluxPipeline (Flux.1-dev shape: guidance embedding, CLIP-L pooled + T5, packed latents)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    clip, t5 = byte_level_clip_tokenizer(), character_t5_tokenizer()
    return FluxPipeline(
        transformer=seeded("transformer", lambda: FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=_WIDTH, pooled_projection_dim=_WIDTH, guidance_embeds=True,
            axes_dims_rope=(4, 6, 6))),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                  base_image_seq_len=256, max_image_seq_len=4096),
        vae=seeded("vae", lambda: _vae(scaling_factor=0.3611, shift_factor=0.1159)),
        text_encoder=seeded("text_encoder", lambda: _clip(clip, _WIDTH, with_projection=False)),
        tokenizer=clip,
        text_encoder_2=seeded("text_encoder_2", lambda: _t5(t5)),
        tokenizer_2=t5,
    )


def _vae(scaling_factor: float, shift_factor: float):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(32, 64), latent_channels=16, sample_size=64,
        scaling_factor=scaling_factor, shift_factor=shift_factor, use_quant_conv=False, use_post_quant_conv=False,
    )


def _clip(tokenizer, width: int, with_projection: bool):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=width, intermediate_size=37, projection_dim=width, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config)


def _t5(tokenizer):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(
        vocab_size=len(tokenizer), d_model=_WIDTH, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        feed_forward_proj="gated-gelu", pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    ))
