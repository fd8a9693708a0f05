"""Parts of the tiny random-weight transformer pipelines (SD3, Flux): a 16-channel VAE, CLIP and T5 encoders.

Each family's tiny pipeline is built in its own module (models/families/<family>/tiny.py) from these.
Sizes from docs/PLATFORM.md ("SD3 and Flux on tiny offline models"): 64 px images, a 16-channel VAE
with each family's scaling and shift (32x32x16 latents), 2-layer encoders 32 wide (SD3's two CLIPs 16
wide each, so their widths add up to the T5's), flow-matching Euler schedulers.
"""

from __future__ import annotations

TEXT_WIDTH = 32  # every tiny text encoder's output width (SD3's two CLIPs: half each)


def tiny_vae16(scaling_factor: float, shift_factor: float):
    """A tiny 16-channel AutoencoderKL (64 px <-> 32x32x16) with the family's latent scaling and shift."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(32, 64), latent_channels=16, sample_size=64,
        scaling_factor=scaling_factor, shift_factor=shift_factor, use_quant_conv=False, use_post_quant_conv=False,
    )


def tiny_clip(tokenizer, width: int, with_projection: bool):
    """A tiny 2-layer CLIP text encoder `width` wide (with a projection: a pooled output of that width)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=width, intermediate_size=37, projection_dim=width, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config)


def tiny_t5(tokenizer):
    """A tiny 2-layer T5 encoder, TEXT_WIDTH wide."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(
        vocab_size=len(tokenizer), d_model=TEXT_WIDTH, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        feed_forward_proj="gated-gelu", pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    ))
