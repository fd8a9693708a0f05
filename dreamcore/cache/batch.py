"""The contract between the caches and the trainer: one batch of cached, ready-to-train tensors.

The cache stages (dreamcore.cache) produce these from Parquet shards; the trainer consumes them
and never needs a VAE or text encoder. Shapes use B = batch, C = latent channels, h/w = latent
height/width, T = text tokens, D = text hidden size, P = pooled size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch


@dataclass
class TrainingBatch:
    """One batch, all from a single aspect bucket (so latents stack)."""

    latents: torch.Tensor  # [B, C, h, w], already multiplied by the VAE's scaling factor
    prompt_embeds: torch.Tensor  # [B, T, D]; SDXL: both encoders' penultimate states concatenated
    pooled_prompt_embeds: torch.Tensor | None = None  # [B, P]; SDXL, SD3 (both CLIPs), Flux (CLIP-L)
    time_ids: torch.Tensor | None = None  # [B, 6] SDXL (orig h, w, crop top, left, target h, w); [B, 5] refiner
    loss_mask: torch.Tensor | None = None  # [B, 1, h, w] in [0, 1]; 1 = train, 0 = ignore
    is_regularisation: torch.Tensor | None = None  # [B] bool; prior-preservation samples
    dataset_ids: list[str] = field(default_factory=list)  # per sample, for logging
    paths: list[str] = field(default_factory=list)  # per sample, relative image paths
    prompt_attention_mask: torch.Tensor | None = None  # [B, T] bool, True = real text token; Flux, Qwen-Image
    # An edit model's reference latents: one [B, C, h', w'] per reference dataset (their own sizes), else None.
    reference: tuple[torch.Tensor, ...] | None = None

    def to(self, device, dtype=None) -> TrainingBatch:
        """Move tensors to a device (floating tensors also to dtype, when given)."""

        def move(t):
            if t is None:
                return None
            if dtype is not None and t.is_floating_point():
                return t.to(device=device, dtype=dtype)
            return t.to(device=device)

        return replace(
            self,
            latents=move(self.latents),
            prompt_embeds=move(self.prompt_embeds),
            pooled_prompt_embeds=move(self.pooled_prompt_embeds),
            time_ids=move(self.time_ids),
            loss_mask=move(self.loss_mask),
            is_regularisation=move(self.is_regularisation),
            prompt_attention_mask=move(self.prompt_attention_mask),
            reference=None if self.reference is None else tuple(move(t) for t in self.reference),
        )

    @property
    def size(self) -> int:
        return int(self.latents.shape[0])


def stack_text(rows: list[torch.Tensor]) -> torch.Tensor:
    """Text rows [T_i, ...] (embeddings or attention masks) stacked into [B, T, ...], zeros appended to the
    shorter ones: a family whose rows keep each caption's own length (Qwen-Image; its attention mask marks the
    padding) batches as its pipeline pads; rows of one length (every other family) stack unchanged."""
    import torch

    length = max(row.shape[0] for row in rows)
    return torch.stack([row if row.shape[0] == length else torch.cat([row, row.new_zeros(length - row.shape[0],
                                                                                          *row.shape[1:])])
                        for row in rows])


class BatchSource(Protocol):
    """An endless, seeded stream of TrainingBatch whose position can be saved and restored.

    The cache layer implements it over Parquet caches and the multi-dataset sampler; the trainer
    saves `state_dict()` in each checkpoint and calls `load_state_dict()` on resume, so a resumed
    run sees exactly the batches an uninterrupted run would have seen.
    """

    def __iter__(self) -> Iterator[TrainingBatch]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
