"""The refine stage: the Dreamboothed base hands its images to an SDXL refiner (stock or tuned)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RefineOptions(BaseModel):
    """The SDXL refiner that refines the base's validation images, and how."""

    refiner_model_name_or_path: str | None = Field(
        None,
        description="SDXL refiner (local diffusers folder or cached hub id) for the refine stage: the trained base "
        "draws the validation prompts and this refiner refines them (img2img at refiner_training_strength). "
        "The dreambooth flow runs the refine stage when this is set.",
    )
    refiner_lora_path: str | None = Field(
        None,
        description="A tuned refiner LoRA for the refine stage, in diffusers format: a .safetensors file or a "
        "folder holding pytorch_lora_weights.safetensors (the export/diffusers folder of a refiner training run; "
        "a path or fsspec URL). Unset: the refiner as it is.",
    )
    refiner_negative_aesthetic_score: float = Field(
        2.5,
        description="Refiner: aesthetic score of the unconditional (negative) branch of classifier-free guidance "
        "when it validates or refines (the refiner was trained to steer away from low scores).",
    )
