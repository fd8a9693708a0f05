"""Validation images and previews."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ValidationOptions(BaseModel):
    """Validation images and previews."""

    validation_preview: bool = Field(False, description="Stream Tiny-AutoEncoder previews during validation.")
    validation_preview_steps: int = Field(1, ge=1, description="Decode a preview every N sampling steps.")
    validation_prompt: str | list[str] | None = Field(None, description="Prompt(s) for validation images.")
    data_aesthetic_score: float = Field(7.0, description="Refiner: aesthetic score the training data is tagged with.")
