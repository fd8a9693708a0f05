"""Masked-loss masks: generated from a text prompt with CLIPSeg, or checked when the user brings them.

The names below load with their module on first use (lazy_loader), so that `dreamcore --help` and
`config check`, which import this package for its commands, do not import its modules (numpy, PIL, the model families)."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "check": ["MaskCheckError", "check_user_masks", "user_masks_key"],
        "datasets": ["masked_dataset", "user_mask_pairs", "with_generated_masks"],
        "generate": ["MaskNameClashError", "MaskOutcome", "NothingDetectedError", "generate_masks", "mask_file_name", "masks_key"],
    },
)
