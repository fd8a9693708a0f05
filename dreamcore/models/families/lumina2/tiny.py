"""Lumina2's tiny random pipeline for tests and the offline demo: a 2-layer Gemma2 32 wide with a BPE tokenizer built
here (Gemma's specials, every character, and merges that make the words of Lumina2Pipeline's system prompt and of the
demo's captions single tokens, so the system prompt and a caption fit the demo's 64 tokens), a Lumina2 transformer,
and Flux's 16-channel VAE shape with four blocks: Lumina2Pipeline assumes a VAE scale factor of 8 (64 px <-> 8x8x16)."""

from __future__ import annotations

import string

from dreamcore.models.tiny_transformers import TEXT_WIDTH
from dreamcore.models.tiny_unets import Seeded

GEMMA_POSITIONS = 512  # the tiny Gemma2's positions: Lumina2's longest caption (SimpleTuner caps it at 512)
# Gemma's special tokens, in its order (<pad> 0, <eos> 1, <bos> 2, <unk> 3).
_SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")
_SPACE = "\u2581"  # Gemma's pre-tokenizer writes spaces as this
_CHARACTERS = string.ascii_letters + string.digits + string.punctuation
# Lumina2Pipeline's default system prompt, prefixed to every caption (with " <Prompt Start> "), and the demo's words.
_WORDS = ("You are an assistant designed to generate superior images with the superior degree of image-text alignment "
          "based on textual prompts or user prompts. <Prompt Start> a photo of the sks toy dog cat person picture "
          "painting drawing background red green blue teal striped dotted plain subject style image").split()


def gemma_tokenizer():
    """A GemmaTokenizer (BPE) over Gemma's specials and single characters, with merges that spell each of `_WORDS`
    (after a space) as one token; any other text falls back to characters (<unk> for characters it lacks)."""
    from transformers import GemmaTokenizer

    pieces = [*_SPECIALS, _SPACE, *_CHARACTERS]
    merges = []
    for word in dict.fromkeys(_WORDS):
        prefix = _SPACE
        for char in word:  # left to right: each merge joins the word's prefix so far and its next character
            merges.append((prefix, char))
            prefix += char
            pieces.append(prefix)
    vocab = {piece: index for index, piece in enumerate(dict.fromkeys(pieces))}
    merges = list(dict.fromkeys(merges))
    return GemmaTokenizer(vocab=vocab, merges=merges, padding_side="right", model_max_length=GEMMA_POSITIONS)


def tiny_gemma2(tokenizer):
    """A 2-layer Gemma2 (grouped-query attention, 2 key/value heads), TEXT_WIDTH wide."""
    from transformers import Gemma2Config, Gemma2Model

    return Gemma2Model(Gemma2Config(
        vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=GEMMA_POSITIONS,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    ))


def tiny_vae16x8(scaling_factor: float, shift_factor: float):
    """A tiny 16-channel AutoencoderKL with four blocks (scale factor 8: 64 px <-> 8x8x16)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 16, 16), layers_per_block=1,
        norm_num_groups=8, latent_channels=16, sample_size=64, scaling_factor=scaling_factor,
        shift_factor=shift_factor, use_quant_conv=False, use_post_quant_conv=False,
    )


def build_lumina2(seeded: Seeded):
    """A tiny Lumina2Pipeline (Lumina-Image 2.0 shape: Gemma2's penultimate states, patch 2, 16-channel latents)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, Lumina2Pipeline, Lumina2Transformer2DModel

    tokenizer = gemma_tokenizer()
    return Lumina2Pipeline(
        transformer=seeded("transformer", lambda: Lumina2Transformer2DModel(
            sample_size=8, patch_size=2, in_channels=16, hidden_size=32, num_layers=1, num_refiner_layers=1,
            num_attention_heads=2, num_kv_heads=1, multiple_of=16, axes_dim_rope=(4, 6, 6), axes_lens=(300, 32, 32),
            cap_feat_dim=TEXT_WIDTH)),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=6.0),  # Lumina-Image 2.0's scheduler config
        vae=seeded("vae", lambda: tiny_vae16x8(scaling_factor=0.3611, shift_factor=0.1159)),  # Flux's VAE
        text_encoder=seeded("text_encoder", lambda: tiny_gemma2(tokenizer)),
        tokenizer=tokenizer,
    )
