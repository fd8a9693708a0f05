"""Validation images, CLIP score, stable eval loss, previews and webhooks (SimpleTuner's key names)."""

from __future__ import annotations

import re
import string
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
        None, description="Validation image size(s): 512 (square), '768x512' (width x height) or a comma-separated "
        "list ('1024x1024,1280x768'): every prompt and seed is drawn at each; unset: the model's default."
    )
    validation_guidance_rescale: float = Field(
        0.0, ge=0.0, le=1.0, description="Guidance rescale (phi) of validation images, for pipelines that take it "
        "(SD 1.x/2.x, SDXL); refused for SD3 and Flux, whose pipelines have none."
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

    evaluation_prompt_set: Literal["none", "dreambooth_object", "dreambooth_live"] = Field(
        "none", description="Subject-fidelity protocol of the DreamBooth paper: its 25 object or live-subject prompts "
        "(dreamcore/evaluate/protocols/dreambooth.json), scored by DINO, CLIP-I, CLIP-T, PRES and DIV."
    )
    evaluation_prompt: str | list[str] | None = Field(
        None, description="Your own protocol prompt template(s), with {token} and {class}; added to the prompt set."
    )
    evaluation_token: str | None = Field(None, description="The subject's identifier that fills {token} (e.g. sks).")
    evaluation_class: str | None = Field(
        None, description="The subject's class noun that fills {class} (e.g. dog); PRES draws the bare 'a {class}'."
    )
    evaluation_images_per_prompt: int = Field(
        4, ge=1, description="Protocol images per prompt (seeds validation_seed, +1, ...); DIV needs at least 2."
    )
    evaluation_quick: bool = Field(
        False, description="Use the protocol's quick subset (5 prompts per set) in the evaluate stage too; the "
        "in-training monitor always uses it."
    )
    evaluation_batch_size: int = Field(4, ge=1, description="Protocol images drawn per pipeline call.")
    evaluation_dino_model: str | None = Field(
        None, description="DINO ViT (e.g. facebook/dino-vits16) for DINO fidelity, PRES and DIV: a local folder or a "
        "cached hub id. Needed by the protocol."
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
        parts = value.split(",") if isinstance(value, str) else [value]
        for part in parts:
            if isinstance(part, str) and not _RESOLUTION.match(part):
                raise ValueError(f"validation_resolution {value!r}: use a number (512), WIDTHxHEIGHT (768x512) or a "
                                 "comma-separated list of them (1024x1024,1280x768)")
            side = min(_size(part)) if part is not None else 8
            if side < 8:
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
        if self.evaluation_protocol_on:
            missing = [name for name in ("evaluation_dino_model", "pretrained_evaluation_model_name_or_path",
                                         "evaluation_token", "evaluation_class") if not getattr(self, name)]
            if missing:
                raise ValueError(f"the subject-fidelity protocol (evaluation_prompt_set / evaluation_prompt) needs "
                                 f"{', '.join(missing)}: set them, or evaluation_prompt_set 'none'")
        for template in self.evaluation_prompts:
            _check_template(template)
        return self

    @property
    def evaluation_prompts(self) -> list[str]:
        """evaluation_prompt as a list (empty when unset)."""
        if self.evaluation_prompt is None:
            return []
        return [self.evaluation_prompt] if isinstance(self.evaluation_prompt, str) else list(self.evaluation_prompt)

    @property
    def evaluation_protocol_on(self) -> bool:
        """True when the subject-fidelity protocol has prompts to draw."""
        return self.evaluation_prompt_set != "none" or bool(self.evaluation_prompts)

    @property
    def validation_prompts(self) -> list[str]:
        """validation_prompt as a list (empty when unset)."""
        if self.validation_prompt is None:
            return []
        return [self.validation_prompt] if isinstance(self.validation_prompt, str) else list(self.validation_prompt)

    def validation_size(self) -> tuple[int, int] | None:
        """(width, height) of the first validation size, or None for the model's default."""
        sizes = self.validation_sizes()
        return sizes[0] if sizes else None

    def validation_sizes(self) -> list[tuple[int, int]]:
        """Every (width, height) of validation_resolution, in order (empty: the model's default)."""
        value = self.validation_resolution
        if value is None:
            return []
        parts = value.split(",") if isinstance(value, str) else [value]
        return list(dict.fromkeys(_size(part) for part in parts))


def _size(value: int | str) -> tuple[int, int]:
    """(width, height) of 512 or '768x512'."""
    if isinstance(value, int):
        return value, value
    width, height = _RESOLUTION.match(value).groups()
    return int(width), int(height or width)


def _check_template(template: str) -> None:
    """A protocol template may name {token} and {class} only."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise ValueError(f"evaluation_prompt {template!r}: {error}; write braces as {{token}} and {{class}}") from None
    unknown = names - {"token", "class"}
    if unknown:
        raise ValueError(f"evaluation_prompt {template!r}: unknown placeholder(s) {sorted(unknown)}; "
                         "use {token} and {class}")
