"""Scheduled sampling (rollout): train on noisy latents the model produced itself.

With probability p(step) a sample's noisy latents are not `add_noise(x0, noise, t)` but the result
of starting at a timestep up to `max_step_offset` above t and letting the current model denoise
down to t with a real sampler (UniPC, Euler or DPM-Solver), without gradients. The target is left
unchanged, so the model learns to correct its own drift (exposure bias).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from dreamcore.config import TrainingConfig

SAMPLERS = ("unipc", "euler", "dpm")


def rollout_probability(config: TrainingConfig, step: int) -> float:
    """p(step): prob_start -> prob_end over ramp_steps from start_step (either direction), then prob_end."""
    if config.scheduled_sampling_max_step_offset == 0:
        return 0.0
    end = config.scheduled_sampling_prob_end
    end = config.scheduled_sampling_probability if end is None else end
    start = config.scheduled_sampling_prob_start
    ramp = config.scheduled_sampling_ramp_steps
    if ramp == 0:
        return float(end)
    start = 0.0 if start is None else start
    progress = min(max((step - config.scheduled_sampling_start_step) / ramp, 0.0), 1.0)
    if config.scheduled_sampling_ramp_shape == "cosine":
        progress = (1.0 - math.cos(math.pi * progress)) / 2.0
    return float(start + (end - start) * progress)


def draw_offsets(batch_size: int, probability: float, max_offset: int, generator) -> torch.Tensor:
    """Per-sample rollout offsets [B]: 0 (no rollout) or uniform in 1..max_offset with `probability`."""
    import torch

    chosen = torch.rand(batch_size, generator=generator) < probability
    offsets = torch.randint(1, max_offset + 1, (batch_size,), generator=generator)
    return torch.where(chosen, offsets, torch.zeros_like(offsets))


def make_sampler(name: str, scheduler_config):
    """A fresh diffusers sampler of the given kind built from the training scheduler's config."""
    from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler, UniPCMultistepScheduler

    classes = {"unipc": UniPCMultistepScheduler, "euler": EulerDiscreteScheduler, "dpm": DPMSolverMultistepScheduler}
    if name not in classes:
        raise ValueError(f"scheduled_sampling_sampler {name!r} is not supported; use one of {SAMPLERS}")
    return classes[name].from_config(scheduler_config)


def roll_forward(
    denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    sampler,
    noise_scheduler,
    clean: torch.Tensor,
    noise: torch.Tensor,
    start: int,
    end: int,
) -> torch.Tensor:
    """Noise `clean` [1, C, h, w] to timestep `start`, then sample down to `end` one timestep per step.

    `denoise(x_t, t)` returns the model output for the DDPM-form input x_t. Returns x_end in DDPM
    form (what `add_noise(clean, noise, end)` would give for a perfect model).
    """
    import torch

    timesteps = list(range(start, end, -1))  # start, start-1, ..., end+1: each step lands one lower
    sigmas = _sigmas(noise_scheduler, timesteps + [end])
    sampler.set_timesteps(num_inference_steps=len(timesteps))  # resets the multistep solver's history
    sampler.timesteps = torch.tensor(timesteps, dtype=torch.float32)  # Euler refuses integer timesteps
    sampler.sigmas = sigmas
    x_t = noise_scheduler.add_noise(clean, noise, torch.tensor([start], device=clean.device))
    euler = sampler.__class__.__name__.startswith("Euler")
    # Euler integrates x / sqrt(alpha_bar); UniPC and DPM-Solver work on x_t itself.
    x = x_t * torch.sqrt(1 + sigmas[0] ** 2) if euler else x_t
    for t in sampler.timesteps:
        model_input = sampler.scale_model_input(x, t) if euler else x
        output = denoise(model_input, t.reshape(1).long().to(clean.device))
        x = sampler.step(output, t, x, return_dict=False)[0]
    return x / torch.sqrt(1 + sigmas[-1] ** 2) if euler else x


def _sigmas(noise_scheduler, timesteps: list[int]) -> torch.Tensor:
    import torch

    alphas_cumprod = noise_scheduler.alphas_cumprod[timesteps].double()
    return (((1 - alphas_cumprod) / alphas_cumprod) ** 0.5).float().to(torch.float32)
