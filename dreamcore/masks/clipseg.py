"""CLIPSeg through transformers: a text prompt in, a probability map of where it is out.

Models load from a local folder or from a hub id that is already in the local Hugging Face
cache; nothing is ever downloaded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
from PIL import Image

from dreamcore.models import check_tokenizer, model_fingerprint


@dataclass
class MaskModel:
    """A loaded CLIPSeg model with its processor, on the device it runs on."""

    model: Any  # CLIPSegForImageSegmentation
    processor: Any  # CLIPSegProcessor
    device: str
    fingerprint: str


def clipseg_fingerprint(path_or_id: str) -> str:
    """Fingerprint of a CLIPSeg folder (config, processor files and weights); raises if not local."""
    try:
        return model_fingerprint(path_or_id)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"mask_generation.model {path_or_id!r}: {error}. Give a local CLIPSeg folder, or download the "
            "model first (e.g. `hf download CIDAS/clipseg-rd64-refined`) so it is in the local cache"
        ) from None


def load_mask_model(path_or_id: str, device: str | None = None) -> MaskModel:
    """Load CLIPSegForImageSegmentation + CLIPSegProcessor (local files only) on `device` (auto if None)."""
    import torch
    from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

    fingerprint = clipseg_fingerprint(path_or_id)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        processor = CLIPSegProcessor.from_pretrained(str(path_or_id), local_files_only=True)
        model = CLIPSegForImageSegmentation.from_pretrained(str(path_or_id), local_files_only=True)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"mask_generation.model {path_or_id!r} is not a CLIPSeg model folder "
            f"(CLIPSegForImageSegmentation + CLIPSegProcessor): {error}"
        ) from None
    # A folder without tokenizer files loads offline as a 2-token tokenizer, silently.
    check_tokenizer(processor.tokenizer, SimpleNamespace(config=model.config.text_config), where=str(path_or_id))
    model.eval().to(device)
    return MaskModel(model, processor, device, fingerprint)


def subject_probabilities(mask_model: MaskModel, image: Image.Image, prompt: str) -> np.ndarray:
    """Probability [h, w] (CLIPSeg's own grid) that each pixel shows what `prompt` names."""
    import torch

    inputs = mask_model.processor(text=[prompt], images=[image], padding="max_length", return_tensors="pt")
    inputs = {name: value.to(mask_model.device) for name, value in inputs.items()}
    with torch.no_grad():
        logits = mask_model.model(**inputs).logits
    # CLIPSeg drops the batch axis for a batch of one; put it back before taking the first map.
    logits = logits.reshape(-1, *logits.shape[-2:])[0]
    return torch.sigmoid(logits.float()).cpu().numpy()
