"""Training objectives: the noise schedule a family trains with, which timesteps it draws, what it predicts.

Both objectives implement `TrainingObjective`: the trainer draws noised latents and their target through
`draw`, the eval loss asks for them at fixed points through `at`, min-SNR weights come from `loss_weights`,
and `check_config` refuses the features an objective cannot honour (naming the key and the family).

DDPM families (SD 1.x/2.x, SDXL, the SDXL refiner) predict the noise (epsilon) or v on discrete
timesteps. SDXL's base/refiner split: the refiner only ever denoises the last, low-noise part of
a generation (img2img at strength s starts at timestep s x T), so it trains on [0, s x T);
inverted, the same boundary gives the base its own share, [s x T, T) (SimpleTuner's
refiner_training_invert_schedule).

Flow-matching families (SD3, Flux) learn the velocity from data to noise on a straight path:
noisy = (1 - sigma) x + sigma n, target = n - x, the transformer given timestep = sigma x 1000.
Sigmas are drawn as SimpleTuner draws them (`flow_sigmas`): logit-normal by default, uniform or beta
on request, then shifted (a fixed shift, or Flux's resolution-dependent one).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import torch

    from dreamcore.config import TrainingConfig

logger = logging.getLogger(__name__)

PREDICTION_TYPES = ("epsilon", "v_prediction")
FLOW_MATCHING = "flow_matching"  # the prediction type flow-matching families report (velocity n - x)
# none: every timestep (refiner_training is an error); on_request: a base that refiner_training may
# split; always: a refiner, trained on its low-noise share unless told to use the full range.
TimestepSplit = Literal["none", "on_request", "always"]


@dataclass
class NoisedLatents:
    """Latents with noise added, and what the denoiser should predict from them."""

    noise: torch.Tensor  # [B, C, h, w]
    noisy: torch.Tensor  # [B, C, h, w]
    timesteps: torch.Tensor  # [B]: DDPM integer timesteps; flow matching sigma x 1000 (float)
    target: torch.Tensor  # [B, C, h, w]


class TrainingObjective(Protocol):
    """What the trainer and the eval loss ask of a family's objective."""

    def noise_scheduler(self, scheduler_config: Mapping[str, Any], prediction_type: str | None, where: str): ...

    def prediction_type(self, scheduler) -> str: ...

    def check_config(self, config: TrainingConfig, family_name: str) -> None: ...

    def timestep_range(self, config: TrainingConfig, family_name: str, num_train_timesteps: int) -> tuple[int, int]: ...

    def draw(self, config: TrainingConfig, scheduler, latents, generator, timestep_range: tuple[int, int],
             prediction_type: str) -> NoisedLatents: ...

    def at(self, scheduler, latents, noise, timestep: int, prediction_type: str) -> NoisedLatents: ...

    def loss_weights(self, config: TrainingConfig, scheduler, timesteps, prediction_type: str): ...


def prediction_target(noise_scheduler, latents, noise, timesteps, prediction_type: str):
    """What a DDPM model should predict: the noise (epsilon) or the velocity (v_prediction)."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return noise_scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"prediction_type {prediction_type!r} is not supported; use epsilon or v_prediction")


def min_snr_weights(noise_scheduler, timesteps, snr_gamma: float, prediction_type: str):
    """Per-sample min-SNR-gamma loss weights [B] (Hang et al. 2023), as in diffusers' examples."""
    import torch
    from diffusers.training_utils import compute_snr

    snr = compute_snr(noise_scheduler, timesteps)
    clipped = torch.clamp(snr, max=snr_gamma)
    # epsilon: weight = min(snr, gamma) / snr; v_prediction: the target already carries snr + 1.
    return clipped / (snr + 1) if prediction_type == "v_prediction" else clipped / snr


@dataclass(frozen=True)
class DdpmObjective:
    """Denoising diffusion on DDPM's discrete timesteps (epsilon or v prediction)."""

    timestep_split: TimestepSplit = "none"

    def prediction_type(self, scheduler) -> str:
        """epsilon or v_prediction, as the training scheduler says."""
        return scheduler.config.prediction_type

    def check_config(self, config: TrainingConfig, family_name: str) -> None:
        """Every training feature applies to DDPM models."""

    def draw(self, config: TrainingConfig, scheduler, latents, generator, timestep_range: tuple[int, int],
             prediction_type: str) -> NoisedLatents:
        """Noise [B, C, h, w] and timesteps uniform in `timestep_range`, drawn from `generator` (CPU) in that order."""
        import torch

        noise = torch.randn(latents.shape, generator=generator).to(latents.device)
        timesteps = torch.randint(*timestep_range, (latents.shape[0],), generator=generator).to(latents.device)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        return NoisedLatents(noise, noisy, timesteps, prediction_target(scheduler, latents, noise, timesteps,
                                                                        prediction_type))

    def at(self, scheduler, latents, noise, timestep: int, prediction_type: str) -> NoisedLatents:
        """Every sample noised at one fixed `timestep` (the eval loss)."""
        import torch

        steps = torch.full((latents.shape[0],), int(timestep), dtype=torch.long, device=latents.device)
        noisy = scheduler.add_noise(latents, noise, steps)
        return NoisedLatents(noise, noisy, steps, prediction_target(scheduler, latents, noise, steps, prediction_type))

    def loss_weights(self, config: TrainingConfig, scheduler, timesteps, prediction_type: str):
        """Min-SNR weights [B] when snr_gamma is set, else None."""
        if not config.snr_gamma:
            return None
        return min_snr_weights(scheduler, timesteps, config.snr_gamma, prediction_type)

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


@dataclass(frozen=True)
class FlowMatchObjective:
    """Rectified flow: noisy = (1 - sigma) x + sigma n, target = n - x, sigmas drawn by `flow_sigmas`."""

    timestep_split: TimestepSplit = "none"  # no base/refiner split (check_config refuses refiner_training)
    # A family's reshaping of the default (logit-normal) training sigmas after the shift, e.g. Chroma's; the uniform
    # and beta schedules are drawn as asked. None: none.
    sigma_warp: Callable[[Any], Any] | None = None

    def noise_scheduler(self, scheduler_config: Mapping[str, Any], prediction_type: str | None, where: str):
        """The model's FlowMatchEulerDiscreteScheduler (its shift settings feed flow_schedule_auto_shift)."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        if prediction_type:
            raise ValueError(f"{where}: prediction_type {prediction_type!r} is set, but this model is trained by flow "
                             "matching (it predicts noise - latents); unset prediction_type")
        return FlowMatchEulerDiscreteScheduler.from_config(dict(scheduler_config))

    def prediction_type(self, scheduler) -> str:
        """Always flow_matching (the velocity noise - latents)."""
        return FLOW_MATCHING

    def check_config(self, config: TrainingConfig, family_name: str) -> None:
        """Refuse the DDPM-only features: min-SNR weighting, scheduled sampling, the refiner split."""
        refused = {
            "snr_gamma": "min-SNR weighting is defined on DDPM's signal-to-noise ratio; unset snr_gamma",
            "scheduled_sampling_max_step_offset": "scheduled sampling (rollout) is written for DDPM samplers; "
                                                  "set scheduled_sampling_max_step_offset to 0",
            "refiner_training": "the base/refiner split exists only for SDXL; unset refiner_training",
        }
        for key, why in refused.items():
            if getattr(config, key):
                raise ValueError(f"{key} is set but {config.pretrained_model_name_or_path} is a {family_name} model "
                                 f"trained by flow matching: {why}")

    def timestep_range(self, config: TrainingConfig, family_name: str, num_train_timesteps: int) -> tuple[int, int]:
        """Every timestep: flow matching has no split (check_config refuses refiner_training)."""
        return 0, num_train_timesteps

    def draw(self, config: TrainingConfig, scheduler, latents, generator, timestep_range: tuple[int, int],
             prediction_type: str) -> NoisedLatents:
        """Noise [B, C, h, w], then sigmas from `flow_sigmas`, drawn from `generator` (CPU) in that order."""
        import torch

        noise = torch.randn(latents.shape, generator=generator).to(latents.device)
        sigmas = flow_sigmas(config, latents.shape[0], tuple(latents.shape[-2:]), generator, scheduler.config)
        if self.sigma_warp is not None and not (config.flow_use_uniform_schedule or config.flow_use_beta_schedule):
            sigmas = self.sigma_warp(sigmas)
        return _flow_noised(scheduler, latents, noise, sigmas.to(latents.device))

    def at(self, scheduler, latents, noise, timestep: int, prediction_type: str) -> NoisedLatents:
        """Every sample at the fixed sigma timestep / num_train_timesteps (the eval loss)."""
        import torch

        sigma = int(timestep) / scheduler.config.num_train_timesteps
        return _flow_noised(scheduler, latents, noise, torch.full((latents.shape[0],), sigma, device=latents.device))

    def loss_weights(self, config: TrainingConfig, scheduler, timesteps, prediction_type: str):
        """Plain MSE: no weighting (check_config refuses snr_gamma)."""


def _flow_noised(scheduler, latents, noise, sigmas) -> NoisedLatents:
    expanded = sigmas.float().reshape(-1, *([1] * (latents.dim() - 1)))
    noisy = (1.0 - expanded) * latents + expanded * noise
    timesteps = sigmas.float() * scheduler.config.num_train_timesteps
    return NoisedLatents(noise, noisy, timesteps, noise - latents)


def flow_sigmas(config: TrainingConfig, size: int, latent_size: tuple[int, int], generator,
                scheduler_config: Mapping[str, Any] | None = None):
    """Training sigmas [size] in [0, 1] as SimpleTuner draws them, from `generator` (a CPU torch.Generator).

    uniform (flow_use_uniform_schedule), else Beta(alpha, beta) (flow_use_beta_schedule), else the
    logit-normal sigmoid(flow_sigmoid_scale x N(0, 1)); then shifted: by Flux's resolution-dependent
    exp(mu) (flow_schedule_auto_shift, mu from the scheduler's base/max shift and the 2x2-patch count of
    `latent_size` [h, w]) or by flow_schedule_shift (0 or 1: none).
    """
    import torch

    if config.flow_use_uniform_schedule:
        sigmas = torch.rand(size, generator=generator)
    elif config.flow_use_beta_schedule:
        sigmas = _beta(config.flow_beta_schedule_alpha, config.flow_beta_schedule_beta, size, generator)
    else:
        sigmas = torch.sigmoid(config.flow_sigmoid_scale * torch.randn(size, generator=generator))
    return shift_sigmas(sigmas, _shift(config, latent_size, scheduler_config or {}))


def shift_sigmas(sigmas, shift: float | None):
    """s' = shift s / (1 + (shift - 1) s): more weight on high noise for shift > 1; monotone in s and shift."""
    if not shift:
        return sigmas
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def _shift(config: TrainingConfig, latent_size: tuple[int, int], scheduler_config: Mapping[str, Any]) -> float | None:
    if config.flow_schedule_auto_shift:
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift

        image_seq_len = (latent_size[0] // 2) * (latent_size[1] // 2)  # 2x2 patches, as Flux packs them
        mu = calculate_shift(image_seq_len, scheduler_config.get("base_image_seq_len", 256),
                             scheduler_config.get("max_image_seq_len", 4096),
                             scheduler_config.get("base_shift", 0.5), scheduler_config.get("max_shift", 1.15))
        return math.exp(mu)
    return config.flow_schedule_shift


def _beta(alpha: float, beta: float, size: int, generator):
    """Beta(alpha, beta) samples [size]; torch's Beta takes no generator, so numpy draws them from a seed of it."""
    import numpy as np
    import torch

    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.from_numpy(np.random.default_rng(seed).beta(alpha, beta, size)).float()
