"""The training config: SimpleTuner's config.json keys, typed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Precision = Literal[
    "no_change", "int8-quanto", "int4-quanto", "int2-quanto", "fp8-quanto", "fp8-torchao", "nf4-bnb"
]


class TrainingConfig(BaseModel):
    """What to train and how. Field names are SimpleTuner's, so its config.json loads as-is."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

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
    validation_preview: bool = Field(False, description="Stream Tiny-AutoEncoder previews during validation.")
    validation_preview_steps: int = Field(1, ge=1, description="Decode a preview every N sampling steps.")
    validation_prompt: str | list[str] | None = Field(None, description="Prompt(s) for validation images.")
    data_aesthetic_score: float = Field(7.0, description="Refiner: aesthetic score the training data is tagged with.")
    output_dir: str = Field("output", description="Where exported weights and reports go (path or fsspec URL).")
    data_backend_config: str | None = Field(
        None, description="Path to the multidatabackend.json dataset list (relative to the config file)."
    )
    storage_root: str | None = Field(
        None,
        description="fsspec URL where stage artifacts and caches live (default: <output_dir>/artifacts).",
    )

    @model_validator(mode="after")
    def _check_combinations(self) -> TrainingConfig:
        if self.model_type == "full" and self.base_model_precision != "no_change":
            raise ValueError(
                f"base_model_precision {self.base_model_precision!r} needs model_type 'lora': a quantised "
                "base can only be trained through an adapter. Set base_model_precision to 'no_change'."
            )
        if self.lora_type == "lycoris" and self.model_type == "lora" and not self.lycoris_config:
            raise ValueError("lora_type 'lycoris' needs lycoris_config: the path to a LyCORIS JSON config.")
        return self

    @property
    def resolved_storage_root(self) -> str:
        """The artifact root URL, defaulting under output_dir."""
        return self.storage_root or f"{self.output_dir.rstrip('/')}/artifacts"
