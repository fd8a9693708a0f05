"""Training objectives: the noise schedule a family trains with and which timesteps it draws.

DDPM families (SD 1.x/2.x, SDXL, the SDXL refiner) predict the noise (epsilon) or v on discrete
timesteps. SDXL's base/refiner split: the refiner only ever denoises the last, low-noise part of
a generation (img2img at strength s starts at timestep s x T), so it trains on [0, s x T);
inverted, the same boundary gives the base its own share, [s x T, T) (SimpleTuner's
refiner_training_invert_schedule).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig

logger = logging.getLogger(__name__)

PREDICTION_TYPES = ("epsilon", "v_prediction")
# none: every timestep (refiner_training is an error); on_request: a base that refiner_training may
# split; always: a refiner, trained on its low-noise share unless told to use the full range.
TimestepSplit = Literal["none", "on_request", "always"]


@dataclass(frozen=True)
class DdpmObjective:
    """Denoising diffusion on DDPM's discrete timesteps (epsilon or v prediction)."""

    timestep_split: TimestepSplit = "none"

    def noise_scheduler(self, scheduler_config: Mapping[str, Any], prediction_type: str | None, where: str):
        """A DDPMScheduler from the model's scheduler config, with `prediction_type` when given."""
        from diffusers import DDPMScheduler

        options = dict(scheduler_config)
        if prediction_type:
            options["prediction_type"] = prediction_type
        scheduler = DDPMScheduler.from_config(options)
        if scheduler.config.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"{where}: prediction_type {scheduler.config.prediction_type!r} in its scheduler "
                             "config is not supported; set prediction_type to epsilon or v_prediction")
        return scheduler

    def timestep_range(self, config: TrainingConfig, family_name: str, num_train_timesteps: int) -> tuple[int, int]:
        """[low, high) of the training timesteps for this config."""
        total = num_train_timesteps
        split = self.timestep_split == "always" or config.refiner_training
        if not split or config.sdxl_refiner_uses_full_range:
            return 0, total
        if self.timestep_split == "none":
            raise ValueError(
                f"refiner_training is set but {config.pretrained_model_name_or_path} is a {family_name} model; the "
                "base/refiner split exists only for SDXL. Unset refiner_training or point at an SDXL model."
            )
        boundary = min(total, max(1, round(config.refiner_training_strength * total)))
        if config.refiner_training_invert_schedule:
            if boundary >= total:
                raise ValueError(
                    "refiner_training_invert_schedule with refiner_training_strength 1.0 leaves no timesteps to "
                    "train; lower refiner_training_strength"
                )
            return boundary, total
        if self.timestep_split == "on_request":
            logger.warning("refiner_training on the %s base %s: training only its low-noise timesteps [0, %d)",
                           family_name, config.pretrained_model_name_or_path, boundary)
        return 0, boundary
