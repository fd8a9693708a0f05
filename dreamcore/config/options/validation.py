"""Validation images, CLIP score, stable eval loss, previews and webhooks (SimpleTuner's key names)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator

from dreamcore.config.options.webhooks import WebhookEntry, webhook_entries

_RESOLUTION = re.compile(r"^\s*(\d+)\s*(?:x\s*(\d+))?\s*$")


class ValidationOptions(BaseModel):
    """Validation images, CLIP score, stable eval loss, previews and webhooks."""

    validation_disable: bool = Field(False, description="Generate no validation images (eval loss still runs).")
    validation_prompt: str | list[str] | None = Field(None, description="Prompt(s) for validation images.")
    validation_negative_prompt: str | None = Field(None, description="Negative prompt for validation images.")
    num_validation_images: int = Field(
        1, ge=1, description="Images per validation prompt (seeds validation_seed, +1, ...). An SDXL refiner "
        "ignores the prompts and refines this many random subject images of the datasets instead."
    )
    validation_seed: int | None = Field(
        None, description="First seed of the validation images (unset: seed). The same seeds serve the base model "
        "and every checkpoint, so images compare side by side."
    )
    validation_num_inference_steps: int = Field(30, ge=1, description="Sampling steps per validation image.")
    validation_guidance: float = Field(7.5, ge=0.0, description="Classifier-free guidance scale of validation images.")
    validation_resolution: int | str | None = Field(
        None, description="Validation image size: 512 (square) or '768x512' (width x height); unset: the model's default."
    )
    validation_steps: int | None = Field(
        None,
        ge=1,
        validation_alias=AliasChoices("validation_steps", "validation_step_interval"),
        description="During training, draw validation images every N optimiser steps (unset: only at the end).",
    )
    disable_benchmark: bool = Field(False, description="Skip the base model's validation images (the 'before' column).")

    evaluation_type: Literal["none", "clip"] = Field(
        "none", description="clip: score every validation image against its prompt (100 x cosine, clamped at 0)."
    )
    pretrained_evaluation_model_name_or_path: str | None = Field(
        None, description="CLIP model + processor for evaluation_type clip: a local folder or a cached hub id."
    )

    eval_steps_interval: int | None = Field(
        None, ge=1, description="During training, compute the stable eval loss every N optimiser steps."
    )
    eval_timesteps: int | list[int] = Field(
        28, description="Stable eval loss timesteps: a count (evenly spread over the schedule) or an explicit list."
    )
    eval_dataset_id: str | None = Field(None, description="The eval dataset (dataset_type eval) to use; unset: all of them.")
    eval_dataset_fraction: float = Field(
        0.0, ge=0.0, lt=1.0,
        description="Without an eval dataset: hold out this fraction of the subject images (chosen by content digest) "
        "for the eval loss.",
    )
    num_eval_images: int | None = Field(None, ge=1, description="Use at most this many eval images for the eval loss.")

    validation_preview: bool = Field(False, description="Stream Tiny-AutoEncoder previews during validation.")
    validation_preview_steps: int = Field(1, ge=1, description="Decode a preview every N sampling steps.")
    validation_preview_vae: str | None = Field(
        None,
        description="Tiny AutoEncoder for previews: a local folder or hub id (unset: madebyollin/taesd or taesdxl "
        "when already in the local Hugging Face cache; never downloaded).",
    )
    webhook_config: list[WebhookEntry] | str | None = Field(
        None,
        description="Webhooks for previews and messages: an object, a list of them, or a JSON file path. Each has "
        "webhook_type discord (webhook_url) or raw (callback_url), optional auth_token, message_prefix, timeout; "
        "a secret can be named instead of given (webhook_url_env / callback_url_env / auth_token_env: an "
        "environment variable; *_secret: a Prefect Secret block). Plain secrets are redacted wherever stored.",
    )

    @field_validator("webhook_config", mode="before")
    @classmethod
    def _webhook_entries(cls, value: Any) -> Any:
        return webhook_entries(value)

    @field_validator("validation_resolution")
    @classmethod
    def _check_resolution(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, str) and not _RESOLUTION.match(value):
            raise ValueError(f"validation_resolution {value!r}: use a number (512) or WIDTHxHEIGHT (768x512)")
        if isinstance(value, int) and value < 8:
            raise ValueError(f"validation_resolution {value} is too small; use e.g. 512")
        return value

    @field_validator("eval_timesteps")
    @classmethod
    def _check_eval_timesteps(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int) and value < 1:
            raise ValueError("eval_timesteps must be a positive count or a list of timesteps")
        if isinstance(value, list) and (not value or any(t < 0 for t in value)):
            raise ValueError("eval_timesteps list must hold timesteps >= 0")
        return value

    @model_validator(mode="after")
    def _check_evaluation(self) -> ValidationOptions:
        if self.evaluation_type == "clip" and not self.pretrained_evaluation_model_name_or_path:
            raise ValueError("evaluation_type 'clip' needs pretrained_evaluation_model_name_or_path (a CLIP folder)")
        return self

    @property
    def validation_prompts(self) -> list[str]:
        """validation_prompt as a list (empty when unset)."""
        if self.validation_prompt is None:
            return []
        return [self.validation_prompt] if isinstance(self.validation_prompt, str) else list(self.validation_prompt)

    def validation_size(self) -> tuple[int, int] | None:
        """(width, height) of validation images, or None for the model's default."""
        value = self.validation_resolution
        if value is None:
            return None
        if isinstance(value, int):
            return value, value
        width, height = _RESOLUTION.match(value).groups()
        return int(width), int(height or width)
