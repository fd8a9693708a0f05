"""Caption encoding: what the text cache stores for a batch of captions, and the settings that shape it.

Each family's encoder runs the stock pipeline's own `encode_prompt` (so cached embeddings equal what the
pipeline would compute when drawing); the CLIP encoder of the UNet families is here, each transformer
family's in its own module. The T5 families (SD3, Flux) share the helpers below: their caption settings
(`tokenizer_max_length`, `t5_padding`), the part of the text encoders' fingerprint they make, and the T5
attention mask recomputed with the same tokenizer call the pipeline makes. torch is imported inside the functions.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

    from dreamcore.config import TrainingConfig


@dataclass(frozen=True)
class CaptionSettings:
    """How T5 captions are tokenised and padded (SimpleTuner's `tokenizer_max_length`, `t5_padding`)."""

    max_sequence_length: int | None = None  # T5 tokens; None: the pipeline's default (SD3 256, Flux 512)
    t5_padding: Literal["zero", "unmodified"] = "unmodified"  # "zero": T5 states at padding tokens set to 0
    # SD3, the empty caption (caption dropout): zeros instead of its CLIP / T5 encoding
    # (SimpleTuner's SD3 uncond behaviour "zero", read by the SD3 family).
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
    attention_mask: torch.Tensor | None = None  # [B, T] uint8, 1 = real text token; Flux, Qwen-Image
    # Each caption keeps its own length (Qwen-Image, as its pipeline): a row is cut to its mask's tokens, so it
    # never depends on the captions encoded beside it; batches pad rows back (cache/batch.py stack_text).
    own_lengths: bool = False

    def row(self, i: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Caption i's (prompt_embeds [T, D], pooled [P] or None, mask [T] or None), as the text cache stores it."""
        pooled = None if self.pooled is None else self.pooled[i]
        mask = None if self.attention_mask is None else self.attention_mask[i]
        if not self.own_lengths:
            return self.prompt_embeds[i], pooled, mask
        length = int(mask.sum())
        return self.prompt_embeds[i, :length], pooled, mask[:length]


def encode_clip_captions(pipe, captions: list[str], settings: CaptionSettings) -> EncodedCaptions:
    """SD 1/2 (final CLIP states), SDXL (penultimate states of both CLIPs, pooled of the second) and Kolors
    (ChatGLM3's penultimate states, pooled = the last token of its final states)."""
    import torch

    with torch.no_grad():  # encode_prompt is not under no_grad itself
        out = pipe.encode_prompt(
            prompt=captions, device=pipe._execution_device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
    pooled = out[2] if len(out) == 4 else None
    return EncodedCaptions(out[0].float().cpu(), None if pooled is None else pooled.float().cpu())


def no_caption_settings(config: TrainingConfig, caption_dropout: bool) -> CaptionSettings:
    """CLIP-only families: nothing in the config changes how captions encode (CLIP reads 77 tokens)."""
    return CaptionSettings()


def no_caption_key(settings: CaptionSettings) -> dict:
    """CLIP-only families: no setting enters the text encoders' fingerprint."""
    return {}


def t5_caption_settings(config: TrainingConfig, caption_dropout: bool) -> CaptionSettings:
    """T5 families: the T5 sequence length (tokenizer_max_length) and padding (t5_padding)."""
    return CaptionSettings(config.tokenizer_max_length, config.t5_padding)


def t5_caption_key(settings: CaptionSettings) -> dict:
    """T5 families: the T5 length and padding, in the text encoders' fingerprint."""
    return {"t5": {"tokenizer_max_length": settings.max_sequence_length, "t5_padding": settings.t5_padding}}


def length_caption_settings(config: TrainingConfig, caption_dropout: bool) -> CaptionSettings:
    """Families whose one sequence encoder reads `tokenizer_max_length` tokens (Lumina2's Gemma2) and nothing else."""
    return CaptionSettings(config.tokenizer_max_length)


def length_caption_key(settings: CaptionSettings) -> dict:
    """Those families: the sequence length, in the text encoders' fingerprint."""
    return {"sequence": {"tokenizer_max_length": settings.max_sequence_length}}


def sequence_length(pipe, settings: CaptionSettings) -> int:
    """The T5 sequence length: `tokenizer_max_length` when set, else the pipeline's encode_prompt default."""
    if settings.max_sequence_length is not None:
        return settings.max_sequence_length
    return int(inspect.signature(pipe.encode_prompt).parameters["max_sequence_length"].default)


def with_t5_padding(embeds, mask, settings: CaptionSettings):
    """T5 states [B, L, D] as t5_padding asks: unchanged, or zero where `mask` [B, L] is 0 ("zero")."""
    if settings.t5_padding == "zero":
        embeds = embeds * mask.unsqueeze(-1).to(embeds.dtype)
    return embeds


def t5_attention_mask(tokenizer, captions: list[str], length: int) -> torch.Tensor:
    """[B, length] uint8: 1 where the pipeline's T5 call sees a caption token (same padding and truncation)."""
    import torch

    tokens = tokenizer(captions, padding="max_length", max_length=length, truncation=True, return_tensors="pt")
    return tokens.attention_mask.to(torch.uint8)
