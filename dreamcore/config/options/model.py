"""What model is trained and through which adapter."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Precision = Literal[
    "no_change", "int8-quanto", "int4-quanto", "int2-quanto", "fp8-quanto", "fp8-torchao", "nf4-bnb"
]


class ModelOptions(BaseModel):
    """What model is trained and through which adapter."""

    model_family: Literal["sd1x", "sd2x", "sdxl", "legacy"] = Field(
        "sdxl",
        description="Model family: sd1x, sd2x, sdxl ('legacy' is SimpleTuner's old name for SD 1.x/2.x).",
    )
    pretrained_model_name_or_path: str | None = Field(
        None,
        description="Local diffusers folder or hub id of the base model (never downloaded silently). "
        "Required to run; config fragments may leave it out.",
    )
    refiner_training: bool = Field(
        False, description="Train the SDXL refiner (detected from the model when it is one)."
    )
    model_type: Literal["lora", "full"] = Field("lora", description="Train an adapter (lora) or the whole UNet (full).")
    lora_type: Literal["standard", "lycoris"] = Field(
        "standard", description="standard: peft LoRA; lycoris: a LyCORIS adapter from lycoris_config."
    )
    lora_rank: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: float | None = Field(None, gt=0, description="LoRA alpha; defaults to the rank.")
    lycoris_config: str | None = Field(
        None, description="Path to a LyCORIS JSON config (SimpleTuner's shape: algo, multiplier, ...)."
    )
    base_model_precision: Precision = Field(
        "no_change", description="Quantise the base UNet for adapter training (e.g. int8-quanto)."
    )
    text_encoder_1_precision: Precision = Field("no_change", description="Precision of text encoder 1 when caching.")
    text_encoder_2_precision: Precision = Field("no_change", description="Precision of text encoder 2 when caching.")
    text_encoder_3_precision: Precision = Field(
        "no_change", description="Accepted for SimpleTuner compatibility; SD and SDXL have no third encoder."
    )
