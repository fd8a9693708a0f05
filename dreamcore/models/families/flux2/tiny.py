"""Flux.2's tiny random pipeline for tests and the offline demo: Flux2KleinPipeline (klein's shape: a Qwen3 text
encoder read at layers 9, 18 and 27, no guidance embedding) with a byte-level BPE tokenizer trained here on a
word list, a 2-block AutoencoderKLFlux2 (64 px <-> 32x32x16 latents, 2x2 patches normalised by seeded batch-norm
statistics) and a one-block Flux2Transformer2DModel."""

from __future__ import annotations

import string

from dreamcore.models.tiny_unets import Seeded

QWEN_WIDTH = 16  # the tiny Qwen3's hidden size; the transformer reads 3 layers' states side by side (48 wide)
QWEN_LAYERS = 27  # Flux2KleinPipeline reads hidden states 9, 18 and 27 by default
QWEN_TOKENS = 512  # Flux2KleinPipeline's default max_sequence_length: the encoder's positions cover it
VAE_CHANNELS = 16
# Qwen3's chat template as Flux2KleinPipeline applies it (a user turn, the generation prompt, thinking off).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% if enable_thinking is defined and "
    "enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
# What the tiny tokenizer learns merges from: the words of the demo's and the tests' captions, the chat template's.
_WORDS = (*string.ascii_lowercase, *string.digits, "a", "an", "the", "of", "on", "in", "with", "and", "photo",
          "picture", "painting", "drawing", "dog", "cat", "toy", "person", "background", "red", "green", "blue", "teal",
          "striped", "dotted", "plain", "sks", "subject", "style", "image", "user", "assistant", "think")


def qwen2_tokenizer():
    """A Qwen2TokenizerFast over a byte-level BPE trained here (its 256 byte symbols spell any text) with Qwen's
    special tokens and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(_WORDS, trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tokenizer = Qwen2TokenizerFast(tokenizer_object=bpe, pad_token="<|endoftext|>", eos_token="<|im_end|>",
                                   unk_token=None, bos_token=None, model_max_length=QWEN_TOKENS)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_qwen3(tokenizer):
    """A Qwen3ForCausalLM QWEN_LAYERS deep and QWEN_WIDTH wide (2 heads, 1 key-value head)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    return Qwen3ForCausalLM(Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=QWEN_WIDTH, intermediate_size=32, num_hidden_layers=QWEN_LAYERS,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=QWEN_TOKENS,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    ))


def tiny_flux2_vae():
    """A 2-block AutoencoderKLFlux2 (64 px <-> 32x32x16) whose batch-norm statistics are drawn (seeded), so the
    patch normalisation is not the identity."""
    import torch
    from diffusers import AutoencoderKLFlux2

    vae = AutoencoderKLFlux2(
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(32, 64), layers_per_block=1, latent_channels=VAE_CHANNELS, sample_size=64,
    )
    with torch.no_grad():
        vae.bn.running_mean.copy_(0.1 * torch.randn_like(vae.bn.running_mean))
        vae.bn.running_var.copy_(0.5 + torch.rand_like(vae.bn.running_var))
    return vae


def build_flux2(seeded: Seeded):
    """A tiny Flux2KleinPipeline (klein-base shape: CFG by a second pass, no guidance embedding)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline, Flux2Transformer2DModel

    tokenizer = qwen2_tokenizer()
    return Flux2KleinPipeline(
        transformer=seeded("transformer", lambda: Flux2Transformer2DModel(
            patch_size=1, in_channels=4 * VAE_CHANNELS, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=3 * QWEN_WIDTH, timestep_guidance_channels=32,
            axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False)),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                  base_image_seq_len=256, max_image_seq_len=4096),
        vae=seeded("vae", tiny_flux2_vae),
        text_encoder=seeded("text_encoder", lambda: tiny_qwen3(tokenizer)),
        tokenizer=tokenizer,
        is_distilled=False,
    )
