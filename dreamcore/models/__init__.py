"""Model folders: the family registry, offline tokenizers, tiny test models, one loading path for real checkpoints.

Importing this package is cheap: torch, diffusers and transformers load inside the functions.
"""

from dreamcore.models.families import ModelFamily, all_families, detect_family, family_named
from dreamcore.models.files import hub_offline, local_model_folder, model_fingerprint
from dreamcore.models.loading import (
    MIN_TOKENIZER_VOCAB,
    check_tokenizer,
    check_tokenizers,
    load_pipeline,
)
from dreamcore.models.tiny import (
    TINY_MODEL_KINDS,
    is_complete_tiny_folder,
    write_tiny_clip,
    write_tiny_clipseg,
    write_tiny_dino,
    write_tiny_family,
    write_tiny_flux,
    write_tiny_models,
    write_tiny_sd,
    write_tiny_sd3,
    write_tiny_sdxl,
    write_tiny_sdxl_refiner,
    write_tiny_taesd,
    write_tiny_taesd16,
)
from dreamcore.models.tokenizer import (
    byte_level_clip_tokenizer,
    character_t5_tokenizer,
    clip_tokenizer_from_words,
)

__all__ = [
    "MIN_TOKENIZER_VOCAB",
    "TINY_MODEL_KINDS",
    "ModelFamily",
    "all_families",
    "byte_level_clip_tokenizer",
    "character_t5_tokenizer",
    "check_tokenizer",
    "check_tokenizers",
    "clip_tokenizer_from_words",
    "detect_family",
    "family_named",
    "hub_offline",
    "is_complete_tiny_folder",
    "load_pipeline",
    "local_model_folder",
    "model_fingerprint",
    "write_tiny_clip",
    "write_tiny_clipseg",
    "write_tiny_dino",
    "write_tiny_family",
    "write_tiny_flux",
    "write_tiny_models",
    "write_tiny_sd",
    "write_tiny_sdxl",
    "write_tiny_sd3",
    "write_tiny_sdxl_refiner",
    "write_tiny_taesd",
    "write_tiny_taesd16",
]
