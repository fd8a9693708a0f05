"""Model folders: offline tokenizers, tiny test models, and one loading path for real checkpoints.

Importing this package is cheap: torch, diffusers and transformers load inside the functions.
"""

from dreamcore.models.loading import (
    FAMILIES,
    MIN_TOKENIZER_VOCAB,
    Family,
    check_tokenizer,
    check_tokenizers,
    detect_family,
    hub_offline,
    load_pipeline,
    model_fingerprint,
)
from dreamcore.models.tiny import (
    TINY_MODEL_KINDS,
    is_complete_tiny_folder,
    write_tiny_clip,
    write_tiny_clipseg,
    write_tiny_models,
    write_tiny_sd,
    write_tiny_sdxl,
    write_tiny_sdxl_refiner,
    write_tiny_taesd,
)
from dreamcore.models.tokenizer import (
    byte_level_clip_tokenizer,
    clip_tokenizer_from_words,
)

__all__ = [
    "FAMILIES",
    "MIN_TOKENIZER_VOCAB",
    "TINY_MODEL_KINDS",
    "Family",
    "byte_level_clip_tokenizer",
    "check_tokenizer",
    "check_tokenizers",
    "clip_tokenizer_from_words",
    "detect_family",
    "hub_offline",
    "is_complete_tiny_folder",
    "load_pipeline",
    "model_fingerprint",
    "write_tiny_clip",
    "write_tiny_clipseg",
    "write_tiny_models",
    "write_tiny_sd",
    "write_tiny_sdxl",
    "write_tiny_sdxl_refiner",
    "write_tiny_taesd",
]
