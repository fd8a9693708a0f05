"""CLIP score of an image against its prompt, on torchmetrics' scale.

Scale: 100 x cosine similarity of CLIP's projected image and text embeddings, clamped at 0
(torchmetrics' CLIPScore). Real CLIP ViT-L/14 gives about 20-35 for images that match their prompt;
the value only compares images scored by the same CLIP model. Prompts longer than the text
encoder's positions are truncated (77 tokens for CLIP).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dreamcore.models import check_tokenizer, hub_offline

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)


class ClipScorer:
    """A CLIP model + processor that scores (image, prompt) pairs."""

    def __init__(self, model, processor) -> None:
        self.model = model
        self.processor = processor

    @classmethod
    def load(cls, path_or_id: str, device=None) -> ClipScorer:
        """CLIPModel and its processor from a local folder or a hub id already in the local cache."""
        from transformers import CLIPModel, CLIPProcessor

        local = Path(path_or_id).expanduser().is_dir()
        if not local and not hub_offline():
            logger.warning("loading CLIP %s from the Hugging Face hub: files not cached yet are downloaded", path_or_id)
        try:
            model = CLIPModel.from_pretrained(str(path_or_id), local_files_only=not local and hub_offline())
            processor = CLIPProcessor.from_pretrained(str(path_or_id), local_files_only=not local and hub_offline())
        except OSError as error:
            raise FileNotFoundError(
                f"pretrained_evaluation_model_name_or_path {path_or_id!r}: no CLIP model and processor there "
                f"({error}); point it at a folder saved with CLIPModel/CLIPProcessor.save_pretrained"
            ) from error
        check_tokenizer(processor.tokenizer, model.text_model, where=f"CLIP {path_or_id}")
        return cls(model.to(device or "cpu").eval().requires_grad_(False), processor)

    def score(self, images: Sequence[Image.Image], prompts: Sequence[str]) -> list[float]:
        """CLIP score of each image against the prompt at the same position."""
        import torch

        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        if not images:
            return []
        device = next(self.model.parameters()).device
        max_length = self.model.config.text_config.max_position_embeddings
        inputs = self.processor(text=list(prompts), images=list(images), return_tensors="pt", padding=True,
                                truncation=True, max_length=max_length)
        inputs = {k: v.to(device) for k, v in inputs.items()}
        with torch.inference_mode():
            out = self.model(**inputs)
        image = out.image_embeds.float()
        text = out.text_embeds.float()
        cosine = (image / image.norm(dim=-1, keepdim=True) * (text / text.norm(dim=-1, keepdim=True))).sum(-1)
        return [float(v) for v in (100.0 * cosine).clamp(min=0.0).cpu()]

    def image_embeddings(self, images: Sequence[Image.Image]):
        """[n, projection] float32 CPU projected image embeddings (CLIP-I compares these)."""
        import torch

        if not images:
            return torch.empty(0)
        device = next(self.model.parameters()).device
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"].to(device)
        with torch.inference_mode():
            return self.model.get_image_features(pixel_values=pixels).pooler_output.float().cpu()


def summarise(scores: Sequence[float]) -> dict[str, float | int | None]:
    """min / mean / max / std (population) and count of a list of scores (None values when empty)."""
    if not scores:
        return {"count": 0, "min": None, "mean": None, "max": None, "std": None}
    return {"count": len(scores), "min": min(scores), "mean": statistics.fmean(scores), "max": max(scores),
            "std": statistics.pstdev(scores)}
