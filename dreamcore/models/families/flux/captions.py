"""Flux's caption encoding: T5 states as the prompt embeddings, CLIP-L's pooled output, the T5 attention mask."""

from __future__ import annotations

from dreamcore.models.families.captions import (
    CaptionSettings,
    EncodedCaptions,
    sequence_length,
    t5_attention_mask,
    with_t5_padding,
)


def encode_flux_captions(pipe, captions: list[str], settings: CaptionSettings) -> EncodedCaptions:
    """Flux: T5 states [B, L, D] as prompt_embeds, CLIP-L's pooled output [B, P], the T5 mask [B, L]."""
    import torch

    length = sequence_length(pipe, settings)
    with torch.no_grad():
        embeds, pooled, _text_ids = pipe.encode_prompt(
            prompt=captions, prompt_2=None, device=pipe._execution_device, num_images_per_prompt=1,
            max_sequence_length=length,
        )
    mask = t5_attention_mask(pipe.tokenizer_2, captions, length)
    return EncodedCaptions(with_t5_padding(embeds.float().cpu(), mask, settings), pooled.float().cpu(), mask)
