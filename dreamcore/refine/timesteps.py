"""Which timesteps training draws: all of them, or one end of SDXL's base/refiner split.

The refiner only ever denoises the last, low-noise part of a generation (img2img at strength s
starts at timestep s x T), so it trains there: timesteps [0, s x T). Inverted, the same boundary
gives the base its own share, [s x T, T) (SimpleTuner's refiner_training_invert_schedule).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig

logger = logging.getLogger(__name__)


def training_timestep_range(config: TrainingConfig, family: str, num_train_timesteps: int) -> tuple[int, int]:
    """[low, high) of the training timesteps for this config and model family."""
    total = num_train_timesteps
    split = family == "sdxl-refiner" or config.refiner_training
    if not split or config.sdxl_refiner_uses_full_range:
        return 0, total
    if family not in ("sdxl", "sdxl-refiner"):
        raise ValueError(
            f"refiner_training is set but {config.pretrained_model_name_or_path} is a {family} model; the "
            "base/refiner split exists only for SDXL. Unset refiner_training or point at an SDXL model."
        )
    boundary = min(total, max(1, round(config.refiner_training_strength * total)))
    if config.refiner_training_invert_schedule:
        if boundary >= total:
            raise ValueError(
                "refiner_training_invert_schedule with refiner_training_strength 1.0 leaves no timesteps to train; "
                "lower refiner_training_strength"
            )
        return boundary, total
    if family == "sdxl":
        logger.warning("refiner_training on the SDXL base %s: training only its low-noise timesteps [0, %d)",
                       config.pretrained_model_name_or_path, boundary)
    return 0, boundary
