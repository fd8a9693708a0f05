"""What model is trained and through which adapter."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

Precision = Literal[
    "no_change", "int8-quanto", "int4-quanto", "int2-quanto", "fp8-quanto", "fp8-torchao", "nf4-bnb"
]

# peft LoRA on the UNet's attention projections: what diffusers' DreamBooth LoRA example trains.
DEFAULT_LORA_TARGET_MODULES = ("to_k", "to_q", "to_v", "to_out.0")


# SimpleTuner's model_flavour values and hub ids (its models' HUGGINGFACE_PATHS at the commit of
# tests/fixtures/simpletuner/keys.json), first = its DEFAULT_MODEL_FLAVOUR. The id is read from the local Hugging
# Face cache only. flux, sd3, kolors and qwen_image fall back to their default flavour when no model is given, as
# SimpleTuner does; the U-Net families do not (a deliberate difference: see dreamcore/config/defaults.py).
MODEL_FLAVOURS: dict[str, dict[str, str]] = {
    "flux": {"krea": "black-forest-labs/flux.1-krea-dev", "dev": "black-forest-labs/flux.1-dev",
             "schnell": "black-forest-labs/flux.1-schnell", "kontext": "black-forest-labs/flux.1-kontext-dev",
             "fluxbooru": "terminusresearch/fluxbooru-v0.3", "libreflux": "jimmycarter/LibreFlux-SimpleTuner"},
    "sd3": {"medium": "stabilityai/stable-diffusion-3.5-medium", "large": "stabilityai/stable-diffusion-3.5-large"},
    "sdxl": {"base-1.0": "stabilityai/stable-diffusion-xl-base-1.0",
             "refiner-1.0": "stabilityai/stable-diffusion-xl-refiner-1.0",
             "base-0.9": "stabilityai/stable-diffusion-xl-base-0.9",
             "refiner-0.9": "stabilityai/stable-diffusion-xl-refiner-0.9"},
    "sd1x": {"dreamshaper": "Lykon/dreamshaper-8", "1.5": "stable-diffusion-v1-5/stable-diffusion-v1-5",
             "1.4": "CompVis/stable-diffusion-v1-4", "realvis": "SG161222/RealVisXL_V5.0"},
    "sd2x": {"pseudoflex-v2": "bghira/pseudo-flex-v2", "digitaldiffusion": "Junglerally/Digital-Diffusion",
             "pseudojourney": "bghira/pseudo-journey-v2", "2.1": "stabilityai/stable-diffusion-2-1",
             "2.0": "stabilityai/stable-diffusion-2-0"},
    "kolors": {"1.0": "terminusresearch/kwai-kolors-1.0"},
    "deepfloyd": {"i-medium-400m": "DeepFloyd/IF-I-M-v1.0", "i-large-900m": "DeepFloyd/IF-I-L-v1.0",
                  "i-xlarge-4.3b": "DeepFloyd/IF-I-XL-v1.0", "ii-medium-450m": "DeepFloyd/IF-II-M-v1.0",
                  "ii-large-1.2b": "DeepFloyd/IF-II-L-v1.0"},
    "qwen_image": {"v2.0": "Qwen/Qwen-Image-2512", "v1.0": "Qwen/Qwen-Image", "edit-v1": "Qwen/Qwen-Image-Edit",
                   "edit-v2": "Qwen/Qwen-Image-Edit-2509", "edit-v2+": "Qwen/Qwen-Image-Edit-2509",
                   "edit-v3": "Qwen/Qwen-Image-Edit-2511"},
    "chroma": {"base": "lodestones/Chroma1-Base", "hd": "lodestones/Chroma1-HD", "flash": "lodestones/Chroma1-Flash"},
    "lumina2": {"2.0": "Alpha-VLLM/Lumina-Image-2.0", "neta-lumina": "terminusresearch/neta-lumina-v1"},
}
# Flavours SimpleTuner trains that dreamcore refuses, and why (model_flavour names them).
REFUSED_FLAVOURS: dict[str, dict[str, str]] = {
    "qwen_image": dict.fromkeys(("edit-v1", "edit-v2", "edit-v2+", "edit-v3"),
                                "Qwen-Image-Edit trains on pairs of a source and an edited image "
                                "(QwenImageEditPipeline); dreamcore trains the text-to-image model only for now: "
                                "use model_flavour v1.0 or v2.0"),
}
# SimpleTuner's lora_init_type values that change the base weights as well as the adapter's.
LORA_INITS_THAT_REWRITE_THE_BASE = ("loftq", "olora", "pissa")
# Families whose default flavour stands in for an unset pretrained_model_name_or_path.
FLAVOUR_FALLBACK_FAMILIES = ("flux", "sd3", "kolors", "qwen_image", "chroma", "lumina2")


class ModelOptions(BaseModel):
    """What model is trained and through which adapter."""

    model_family: Literal[
        "sd1x", "sd2x", "sdxl", "sd3", "flux", "legacy", "kolors", "deepfloyd",
        "qwen_image",
        "chroma",
        "lumina2",
    ] = Field(
        "sdxl",
        description="Model family: sd1x, sd2x, sdxl, sd3, flux, kolors, deepfloyd, qwen_image, chroma, lumina2 "
        "('legacy' is SimpleTuner's old name for SD 1.x/2.x).",
    )
    pretrained_model_name_or_path: str | None = Field(
        None,
        description="Local diffusers folder or hub id of the base model (never downloaded silently). "
        "Required to run; config fragments may leave it out. Unset for flux/sd3/kolors/qwen_image/chroma/lumina2: "
        "the model_flavour's hub id.",
    )
    model_flavour: str | None = Field(
        None,
        description="SimpleTuner's model flavour when pretrained_model_name_or_path is unset: flux krea|dev|schnell|"
        "kontext|fluxbooru|libreflux (default krea), sd3 medium|large (default medium), sdxl base-1.0|refiner-1.0|"
        "base-0.9|refiner-0.9, sd1x dreamshaper|1.5|1.4|realvis, sd2x pseudoflex-v2|digitaldiffusion|pseudojourney|"
        "2.1|2.0, qwen_image v2.0|v1.0 (default v2.0; edit-* refused), chroma base|hd|flash (default base), "
        "lumina2 2.0|neta-lumina (default 2.0). Resolves to the hub id SimpleTuner uses, which must already be in "
        "the local Hugging Face cache.",
    )
    refiner_training: bool = Field(
        False,
        description="Train for SDXL's base/refiner split. A refiner model (text_encoder_2 only, aesthetic-score "
        "time ids) is detected and trained as one without this; on an SDXL base it limits training to the "
        "refiner's timestep range (with refiner_training_invert_schedule: the base's own share of the split).",
    )
    refiner_training_strength: float = Field(
        0.2,
        gt=0.0,
        le=1.0,
        description="Refiner: the low-noise fraction of the timesteps it trains on and refines at (0.2: the last "
        "20 %, timesteps [0, 200) of 1000). Also the img2img strength of refiner validation and of the refine stage.",
    )
    refiner_training_invert_schedule: bool = Field(
        False,
        description="Train the other end: timesteps [strength x T, T), the base's share of a base/refiner split.",
    )
    sdxl_refiner_uses_full_range: bool = Field(
        False, description="Train the refiner on every timestep instead of its refiner_training_strength range."
    )
    data_aesthetic_score: float = Field(
        7.0, description="Refiner: aesthetic score the training data is tagged with (the last of its 5 time ids)."
    )
    model_type: Literal["lora", "full"] = Field("lora", description="Train an adapter (lora) or the whole UNet (full).")
    lora_type: Literal["standard", "lycoris"] = Field(
        "standard", description="standard: peft LoRA; lycoris: a LyCORIS adapter from lycoris_config."
    )
    lora_rank: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: float | None = Field(None, gt=0, description="LoRA alpha; defaults to the rank.")
    lora_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout on the peft LoRA path while training "
                                "(SimpleTuner's default 0.1).")
    lora_init_type: Literal["default", "gaussian", "loftq", "olora", "pissa"] = Field(
        "default",
        description="peft LoRA initialisation (peft's init_lora_weights): default (peft's: kaiming-uniform A, zero "
        "B) or gaussian (normal A scaled by 1/rank, zero B). loftq, olora and pissa are refused: they rewrite the "
        "base weights, so the exported LoRA would not apply to the stock base model.",
    )
    peft_lora_target_modules: list[str] | None = Field(
        None,
        description="UNet module names (or name suffixes) the peft LoRA wraps; default: "
        + ", ".join(DEFAULT_LORA_TARGET_MODULES)
        + ". A comma-separated string is accepted too.",
    )
    lycoris_config: str | None = Field(
        None, description="Path to a LyCORIS JSON config (SimpleTuner's shape: algo, multiplier, ...)."
    )
    prediction_type: Literal["epsilon", "v_prediction"] | None = Field(
        None, description="Override the model's prediction type; default: read from its scheduler config."
    )
    base_model_precision: Precision = Field(
        "no_change", description="Quantise the base UNet for adapter training (e.g. int8-quanto)."
    )
    text_encoder_1_precision: Precision = Field(
        "no_change", description="Precision of text encoder 1 when caching (optimum-quanto kinds, e.g. int8-quanto)."
    )
    text_encoder_2_precision: Precision = Field(
        "no_change", description="Precision of text encoder 2 when caching (Flux: its T5; e.g. int8-quanto)."
    )
    text_encoder_3_precision: Precision = Field(
        "no_change", description="Precision of text encoder 3 when caching: SD3's T5 (e.g. int8-quanto); "
        "families without a third encoder ignore it."
    )

    @model_validator(mode="before")
    @classmethod
    def _model_of_flavour(cls, values):
        """pretrained_model_name_or_path from model_flavour (or the family's default flavour) when unset."""
        if not isinstance(values, dict):
            return values
        family = values.get("model_family", "sdxl")
        flavours, flavour = MODEL_FLAVOURS.get(family), values.get("model_flavour")
        path = values.get("pretrained_model_name_or_path")
        if flavour is not None and flavours is not None and flavour not in flavours:
            raise ValueError(f"model_flavour {flavour!r} is not a flavour of model_family {family!r}; flavours: "
                             f"{', '.join(flavours)} (or set pretrained_model_name_or_path)")
        if flavour in REFUSED_FLAVOURS.get(family, {}):
            raise ValueError(f"model_flavour {flavour!r} of model_family {family!r} is refused: "
                             f"{REFUSED_FLAVOURS[family][flavour]}")
        if flavour is not None and flavours is None and not path:  # legacy: sd1x or sd2x, unknown which
            raise ValueError(f"model_flavour {flavour!r}: dreamcore knows no hub ids for model_family {family!r}; "
                             "set pretrained_model_name_or_path to the model's folder or hub id")
        if flavours and not path and (flavour is not None or family in FLAVOUR_FALLBACK_FAMILIES):
            values = dict(values)
            values["pretrained_model_name_or_path"] = flavours[flavour or next(iter(flavours))]
        return values

    @field_validator("lora_init_type")
    @classmethod
    def _init_keeps_the_base(cls, value: str) -> str:
        if value in LORA_INITS_THAT_REWRITE_THE_BASE:
            raise ValueError(f"lora_init_type {value!r} is refused: it rewrites the base model's weights, so the "
                             "exported LoRA would not apply to the stock base model; use 'default' or 'gaussian'")
        return value

    @field_validator("peft_lora_target_modules", mode="before")
    @classmethod
    def _split_target_modules(cls, value):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if value is not None and not value:
            raise ValueError("peft_lora_target_modules is empty: name at least one module, e.g. to_q")
        return value

    @property
    def lora_target_modules(self) -> list[str]:
        """The peft LoRA target modules, defaults filled in."""
        return list(self.peft_lora_target_modules or DEFAULT_LORA_TARGET_MODULES)
