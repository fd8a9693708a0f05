"""Masked-loss masks: generated from a text prompt with CLIPSeg, or checked when the user brings them.

The names load with their modules on first use (lazy_loader): `dreamcore --help` and `config check`
import this package for its commands and should not pay for numpy, PIL and the model families.
"""

import lazy_loader

_EXPORTS = {  # module -> the names it gives this package
    "check": ["MaskCheckError", "check_user_masks", "user_masks_key"],
    "datasets": ["masked_dataset", "user_mask_pairs", "with_generated_masks"],
    "generate": ["MaskNameClashError", "MaskOutcome", "NothingDetectedError", "generate_masks", "mask_file_name", "masks_key"],
}
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=_EXPORTS)
