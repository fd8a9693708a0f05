"""Optimisation, precision, EMA and scheduled sampling (rollout)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TrainOptions(BaseModel):
    """Optimisation, precision, EMA and scheduled sampling (rollout)."""

    learning_rate: float = Field(1e-4, gt=0, description="Peak learning rate.")
    max_train_steps: int = Field(1000, ge=0, description="Optimiser steps to train.")
    train_batch_size: int = Field(1, ge=1, description="Images per step per process.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-batches per optimiser step.")
    mixed_precision: Literal["no", "fp16", "bf16"] = Field("bf16", description="Autocast precision on the accelerator.")
    seed: int | None = Field(42, description="Random seed; the same seed reproduces a run.")
    use_ema: bool = Field(False, description="Keep an exponential moving average of the trained weights.")
    scheduled_sampling_max_step_offset: int = Field(
        0, ge=0, description="Rollout: how many sampler steps the model takes to make its own noisy input."
    )
    scheduled_sampling_probability: float = Field(
        0.0, ge=0.0, le=1.0, description="Rollout: how often (0..1) a batch uses rolled-out latents."
    )
    scheduled_sampling_ramp_steps: int = Field(
        0, ge=0, description="Rollout: ramp the probability up over this many steps."
    )
    scheduled_sampling_sampler: Literal["unipc", "euler", "dpm"] = Field(
        "unipc", description="Rollout: the sampler used to roll the model forward."
    )
