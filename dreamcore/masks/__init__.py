"""Masked-loss masks: generated from a text prompt with CLIPSeg, or checked when the user brings them."""

from dreamcore.masks.check import MaskCheckError, check_user_masks, user_masks_key
from dreamcore.masks.datasets import masked_dataset, user_mask_pairs, with_generated_masks
from dreamcore.masks.generate import (
    MaskNameClashError,
    MaskOutcome,
    NothingDetectedError,
    generate_masks,
    mask_file_name,
    masks_key,
)

__all__ = [
    "MaskCheckError",
    "MaskNameClashError",
    "MaskOutcome",
    "NothingDetectedError",
    "check_user_masks",
    "generate_masks",
    "mask_file_name",
    "masked_dataset",
    "masks_key",
    "user_mask_pairs",
    "user_masks_key",
    "with_generated_masks",
]
