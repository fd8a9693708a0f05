"""Datasets dreamcore makes for the run: subject masks (CLIPSeg) and class (regularisation) images."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dreamcore.config.options.model import Precision

SchedulerName = Literal["default", "ddim", "ddpm", "pndm", "euler", "euler_a", "dpm++", "unipc"]


class MaskGenerationOptions(BaseModel):
    """Make a mask (white = train, black = ignore) for every image of one dataset from a text prompt."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(..., min_length=1, description="id of the image dataset to mask.")
    prompt: str = Field(..., min_length=1, description="What to keep, in words: 'person', 'dog', 'red mug'.")
    model: str = Field(
        ...,
        min_length=1,
        description="CLIPSeg model: a local folder or a hub id already in the local cache (never downloaded).",
    )
    threshold: float = Field(
        0.4, gt=0.0, lt=1.0, description="Pixels whose CLIPSeg probability reaches this are the subject."
    )
    padding_px: int = Field(8, ge=0, description="Grow the subject region by this many pixels (a square brush).")
    feather_px: float = Field(
        4.0, ge=0.0, description="Gaussian blur radius (px) softening the mask edge; 0 = hard edge."
    )
    invert: bool = Field(False, description="Train everywhere except what the prompt names (e.g. prompt 'watermark').")
    min_area_fraction: float = Field(
        0.005,
        ge=0.0,
        lt=1.0,
        description="Detected regions smaller than this fraction of the image are dropped as noise.",
    )
    strict: bool = Field(
        False,
        description="Fail when nothing is detected in an image (default: give it an all-white mask and flag it).",
    )
    conditioning_dataset: str | None = Field(
        None,
        description="id of the conditioning dataset the masks become (default '<dataset>-masks'). If the "
        "dataset list already has it, its instance_data_dir is replaced by the generated folder.",
    )

    @property
    def conditioning_dataset_id(self) -> str:
        """The id of the mask dataset these options produce."""
        return self.conditioning_dataset or f"{self.dataset}-masks"


class ClassImageOptions(BaseModel):
    """Generate class (regularisation) images with the base model, one fixed seed per image."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(
        ..., min_length=1, description="Class prompt, e.g. 'a photo of a man'; also each image's caption."
    )
    count: int = Field(..., ge=1, description="How many class images; raising it later generates only the new ones.")
    resolutions: list[int | tuple[int, int]] | None = Field(
        None,
        description="Image sizes, used in turn (image i gets resolutions[i % n]): an edge length for squares "
        "or [width, height]. Default: the model's native size.",
    )
    negative_prompt: str = Field("", description="What the images should not show.")
    guidance_scale: float = Field(7.5, ge=0.0, description="Classifier-free guidance scale.")
    num_inference_steps: int = Field(30, ge=1, description="Sampler steps per image.")
    scheduler: SchedulerName = Field(
        "dpm++", description="Sampler: ddim, ddpm, pndm, euler, euler_a, dpm++, unipc, or 'default' (the model's own)."
    )
    batch_size: int = Field(4, ge=1, description="Images generated together.")
    base_seed: int = Field(0, ge=0, description="Image i uses seed base_seed + i, so a rerun reproduces the set.")
    model: str | None = Field(
        None, description="Model folder or hub id to generate with (default: pretrained_model_name_or_path)."
    )
    dataset: str = Field(
        "regularisation",
        min_length=1,
        description="id of the regularisation dataset the images become. If the dataset list has it, its "
        "instance_data_dir is replaced by the generated folder; otherwise it is added with "
        "is_regularisation_data true.",
    )
    base_model_precision: Precision | None = Field(
        None, description="Quantise the UNet while generating (default: the training's base_model_precision)."
    )
    mixed_precision: Literal["no", "fp16", "bf16"] | None = Field(
        None, description="Half-precision weights on CUDA (default: the training's mixed_precision); CPU runs float32."
    )

    @field_validator("resolutions")
    @classmethod
    def _sizes_fit_the_vae(cls, value: list[int | tuple[int, int]] | None) -> list[int | tuple[int, int]] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one resolution, or leave resolutions out for the model's native size")
        for entry in value:
            edges = (entry, entry) if isinstance(entry, int) else entry
            if any(edge < 8 or edge % 8 for edge in edges):
                raise ValueError(f"resolution {entry!r}: edges must be multiples of 8 and at least 8 px")
        return value


class GenerationOptions(BaseModel):
    """Datasets dreamcore generates before training: masks and class images."""

    mask_generation: MaskGenerationOptions | None = Field(
        None, description="Generate the masked-loss masks of one image dataset with CLIPSeg."
    )
    class_images: ClassImageOptions | None = Field(
        None, description="Generate class (regularisation) images with the base model."
    )
