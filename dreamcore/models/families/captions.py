"""Caption encoding per family: the tensors the text cache stores for a batch of captions.

Each encoder runs the stock pipeline's own `encode_prompt` (so cached embeddings equal what the
pipeline would compute when drawing) and, for T5 families, recomputes the T5 attention mask with
the same tokenizer call the pipeline makes. torch is imported inside the functions.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class CaptionSettings:
    """How T5 captions are tokenised and padded (SimpleTuner's `tokenizer_max_length`, `t5_padding`)."""

    max_sequence_length: int | None = None  # T5 tokens; None: the pipeline's default (SD3 256, Flux 512)
    t5_padding: Literal["zero", "unmodified"] = "unmodified"  # "zero": T5 states at padding tokens set to 0
    # SD3, the empty caption (caption dropout): zeros instead of its CLIP / T5 encoding
    # (SimpleTuner's sd3_clip_uncond_behaviour / sd3_t5_uncond_behaviour "zero").
    empty_clip_zero: bool = False
    empty_t5_zero: bool = False

    @property
    def empty_caption_settings(self) -> dict:
        """What changes the empty caption's encoding beyond the encoders (part of its cache row key)."""
        return {"clip_zero": self.empty_clip_zero, "t5_zero": self.empty_t5_zero} if (
            self.empty_clip_zero or self.empty_t5_zero) else {}


@dataclass
class EncodedCaptions:
    """One batch of encoded captions, float32 on the CPU."""

    prompt_embeds: torch.Tensor  # [B, T, D]
    pooled: torch.Tensor | None = None  # [B, P]; families without a pooled embedding: None
    attention_mask: torch.Tensor | None = None  # [B, T] uint8, 1 = real T5 token; Flux only


def encode_clip_captions(pipe, captions: list[str], settings: CaptionSettings) -> EncodedCaptions:
    """SD 1/2 (final CLIP states) and SDXL (penultimate states of both CLIPs, pooled of the second)."""
    import torch

    with torch.no_grad():  # encode_prompt is not under no_grad itself
        out = pipe.encode_prompt(
            prompt=captions, device=pipe._execution_device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
    pooled = out[2] if len(out) == 4 else None
    return EncodedCaptions(out[0].float().cpu(), None if pooled is None else pooled.float().cpu())


def encode_sd3_captions(pipe, captions: list[str], settings: CaptionSettings) -> EncodedCaptions:
    """SD3: CLIP-L + CLIP-G penultimate states (zero-padded to the T5 width) followed by the T5 states
    [B, 77 + L, D]; pooled = both CLIP pooled outputs concatenated. The transformer takes no mask.
    The empty caption's CLIP and/or T5 parts are zeros when the settings ask (SimpleTuner's uncond behaviour)."""
    import torch

    length = sequence_length(pipe, settings)
    with torch.no_grad():
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompt=captions, prompt_2=None, prompt_3=None, device=pipe._execution_device, num_images_per_prompt=1,
            do_classifier_free_guidance=False, max_sequence_length=length,
        )
    embeds, pooled = embeds.float().cpu(), pooled.float().cpu()
    if settings.t5_padding == "zero":
        mask = t5_attention_mask(pipe.tokenizer_3, captions, length)
        embeds[:, -length:] *= mask.unsqueeze(-1).to(embeds.dtype)  # the T5 part is the last `length` tokens
    for row in (i for i, caption in enumerate(captions) if caption == ""):
        if settings.empty_clip_zero:  # both CLIPs' states and pooled outputs
            embeds[row, :-length] = 0
            pooled[row] = 0
        if settings.empty_t5_zero:
            embeds[row, -length:] = 0
    return EncodedCaptions(embeds, pooled)


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
    embeds = embeds.float().cpu()
    if settings.t5_padding == "zero":
        embeds *= mask.unsqueeze(-1).to(embeds.dtype)
    return EncodedCaptions(embeds, pooled.float().cpu(), mask)


def sequence_length(pipe, settings: CaptionSettings) -> int:
    """The T5 sequence length: `tokenizer_max_length` when set, else the pipeline's encode_prompt default."""
    if settings.max_sequence_length is not None:
        return settings.max_sequence_length
    return int(inspect.signature(pipe.encode_prompt).parameters["max_sequence_length"].default)


def t5_attention_mask(tokenizer, captions: list[str], length: int) -> torch.Tensor:
    """[B, length] uint8: 1 where the pipeline's T5 call sees a caption token (same padding and truncation)."""
    import torch

    tokens = tokenizer(captions, padding="max_length", max_length=length, truncation=True, return_tensors="pt")
    return tokens.attention_mask.to(torch.uint8)
