"""What a model family is: everything the stages need to know about one kind of diffusion model.

A family is data plus a few small functions; stages ask it (`family.pooled_text`,
`family.time_ids(row, score)`, `family.objective.timestep_range(...)`) and never test its name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dreamcore.config.options.families import FamilyOptions
from dreamcore.models.families.captions import (
    CaptionSettings,
    EncodedCaptions,
    encode_clip_captions,
    no_caption_key,
    no_caption_settings,
)
from dreamcore.models.families.denoisers import Conditioning, predict_unet
from dreamcore.models.families.exports import LoraLayout
from dreamcore.models.families.kohya import KOHYA_LORA
from dreamcore.models.families.latents import scaled_latents
from dreamcore.models.families.objectives import DdpmObjective, TrainingObjective

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig

# (model_index.json, the denoiser's config.json) -> whether a model folder is of this family.
Detector = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]
# (a cached VAE row's geometry, the data's aesthetic score) -> the micro-conditioning of one sample.
TimeIds = Callable[[Mapping[str, Any], float], list[float]]
# (a pipeline with its text encoders, captions, T5 settings) -> what the text cache stores for them.
CaptionEncoder = Callable[[Any, list[str], CaptionSettings], EncodedCaptions]
# (denoiser, noisy latents [B, C, h, w], timesteps [B], conditioning) -> prediction [B, C, h, w].
Predict = Callable[[Any, Any, Any, Conditioning], Any]
# (config, batch size, CPU generator or None for the fixed eval value) -> guidance [B], e.g. Flux's.
Guidance = Callable[["TrainingConfig", int, Any], Any]
# (clean target pixels [B, C, H, W], CPU generator) -> (degraded conditioning image [B, C, H, W], its noise level
# [B]): an upscaler's low-resolution input made from the target (DeepFloyd IF stage II).
ImageConditioning = Callable[[Any, Any], tuple[Any, Any]]
# (VAE, pixels [B, 3, H, W] in [-1, 1] on its device) -> latents [B, C, h, w] float32, as the denoiser trains on them.
LatentEncoder = Callable[[Any, Any], Any]
# config -> the peft LoRA target modules of this family's denoiser.
LoraTargets = Callable[["TrainingConfig"], list[str]]
# (config, whether captions drop out) -> how captions encode (sequence length, padding, the empty caption).
CaptionSettingsOf = Callable[["TrainingConfig", bool], CaptionSettings]
# caption settings -> the part of them that changes cached embeddings (in the text encoders' fingerprint).
CaptionKey = Callable[[CaptionSettings], dict]
# config -> whether the denoiser attends only to real text tokens (the text cache's attention mask).
TextMasked = Callable[["TrainingConfig"], bool]
# (seeded(component, build), options such as prediction_type) -> its tiny random-weight pipeline (tests, demo).
TinyBuilder = Callable[..., Any]


def config_lora_targets(config: TrainingConfig) -> list[str]:
    """The config's peft_lora_target_modules, or the UNet attention projections."""
    return config.lora_target_modules


def unmasked_text(config: TrainingConfig) -> bool:
    """The denoiser attends to every text token (padding too)."""
    return False


def masked_text(config: TrainingConfig) -> bool:
    """The denoiser always attends through the cached text attention mask, as its stock pipeline does (Chroma,
    Lumina2)."""
    return True


# Components a pipeline may carry that no stage after caching needs (the trainer reads caches).
_NEVER_TRAINED = ("vae", "feature_extractor", "image_encoder")


@dataclass(frozen=True)
class ModelFamily:
    """One kind of model, as every stage sees it."""

    name: str  # stored in stage results and reports: "sd1", "sdxl-refiner"
    config_names: tuple[str, ...]  # SimpleTuner `model_family` values that mean this family
    detects: Detector
    pipeline_class: str  # the stock diffusers pipeline that loads, validates and saves its LoRA
    text_components: tuple[str, ...]  # text encoders + tokenizers the text cache runs and fingerprints
    # Every stock pipeline its folders may name (flavours with their own pipeline, e.g. Flux.2 dev and klein): a
    # folder loads with the class its model_index.json names when it is one of them; empty: pipeline_class only.
    pipeline_classes: tuple[str, ...] = ()
    denoiser: str = "unet"  # the pipeline component training adapts
    pipeline_options: Mapping[str, Any] = field(default_factory=dict)  # extra from_pretrained options
    pooled_text: bool = False  # captions also carry a pooled embedding [P]
    time_ids: TimeIds | None = None  # SDXL-style micro-conditioning [B, n]; None: the model takes none
    prompt_hidden_layer: int = -1  # -1: final layer-normed states (SD 1/2); -2: penultimate (SDXL)
    text_cache_folder: str = "text_embeds"  # under the storage root, unless the dataset list names one
    refines_images: bool = False  # an img2img model (the SDXL refiner): it refines images, it cannot draw
    upscale_factor: int = 1  # an upscaler's output / input edge (DeepFloyd IF stage II: 4); 1: same size
    # An upscaler's config key naming the text-to-image model whose images it upscales when validation draws from
    # prompts (DeepFloyd IF stage II: its stage I model key); None: it has none
    first_stage_key: str | None = None
    preview_decoder: str | None = None  # default Tiny AutoEncoder hub id for sampling previews
    # The component the cache stage encodes cropped images with; None: a pixel-space model (DeepFloyd IF), whose
    # caches hold the pixels themselves in [-1, 1] (previews need no decoder).
    latent_vae: str | None = "vae"
    vae_class: str = "AutoencoderKL"  # the diffusers class of that component
    encode_latents: LatentEncoder = scaled_latents  # its pixels -> the latents the cache stores
    # LoRA layouts besides diffusers_lora (which all write), by export name: kohya_lora (SD/SDXL UNet keys)
    lora_layouts: Mapping[str, LoraLayout] = field(default_factory=lambda: {"kohya_lora": KOHYA_LORA})
    objective: TrainingObjective = field(default_factory=DdpmObjective)

    # training (the denoiser call, conditioning, adapters, family-only config keys)
    predict: Predict = predict_unet  # how the denoiser is called; inputs and output [B, C, h, w]
    guidance: Guidance | None = None  # a guidance input drawn per sample (Flux); None: the model takes none
    # An upscaler's low-resolution input, made from the clean target per batch; None: the model takes none
    image_conditioning: ImageConditioning | None = None
    # An edit model (Flux Kontext): its predict takes Conditioning.reference (the cached latents of each sample's
    # paired reference images) and its pipeline draws from a reference `image`; False: reference datasets are refused.
    conditions_on_references: bool = False
    text_attention_masked: TextMasked = unmasked_text  # whether training and the eval loss mask text padding
    lora_targets: LoraTargets = config_lora_targets  # peft LoRA target modules for a config
    # Its family-only option groups (config/options/families/): the keys it owns; those the trainer reads
    # (group.in_train_key) are in its train stage key and no other family's.
    options: tuple[type[FamilyOptions], ...] = ()
    # Keys of those groups it cannot honour -> why: refused by key when set away from their default (Chroma: Flux's
    # guidance keys, it has no guidance embedding).
    refused_keys: Mapping[str, str] = field(default_factory=dict)

    # caption encoding (text cache) and drawing
    encode_captions: CaptionEncoder = encode_clip_captions  # captions -> prompt_embeds, pooled, attention mask
    caption_settings: CaptionSettingsOf = no_caption_settings  # what of the config shapes its caption encoding
    caption_key: CaptionKey = no_caption_key  # what of those settings enters the text encoders' fingerprint
    sequence_tokenizer: str | None = None  # the tokenizer tokenizer_max_length sets (T5); None: CLIP's 77 only
    ddpm_samplers: bool = True  # class images may swap in DDPM samplers (dpm++, ...); False: its own scheduler only
    tiny_model: TinyBuilder | None = None  # its tiny random pipeline (models/tiny.py writes it); None: it has none

    def check_config(self, config: TrainingConfig) -> None:
        """Refuse what this family cannot honour, by key: its objective's refusals, its refused_keys set away from
        their default, and a validation guidance rescale its stock pipeline has no argument for."""
        self.objective.check_config(config, self.name)
        for key, why in self.refused_keys.items():
            if getattr(config, key) != type(config).model_fields[key].default:
                raise ValueError(f"{key} is {getattr(config, key)!r} but {config.pretrained_model_name_or_path} is a "
                                 f"{self.name} model: {why}")
        self.check_validation(config)

    def check_validation(self, config: TrainingConfig) -> None:
        """Refuse validation settings this family's stock pipeline cannot draw with, by key."""
        if config.validation_guidance_rescale and not self.pipeline_takes("guidance_rescale"):
            raise ValueError(f"validation_guidance_rescale is {config.validation_guidance_rescale} but "
                             f"{config.pretrained_model_name_or_path} is a {self.name} model whose {self.pipeline_class} "
                             "takes no guidance_rescale; set validation_guidance_rescale to 0")

    def pipeline_takes(self, argument: str) -> bool:
        """Whether the stock pipeline's call takes `argument`."""
        import diffusers

        return argument in inspect.signature(getattr(diffusers, self.pipeline_class).__call__).parameters

    @property
    def lora_exports(self) -> tuple[str, ...]:
        """The LoRA formats it exports: diffusers_lora, then its own layouts."""
        return ("diffusers_lora", *self.lora_layouts)

    @property
    def trained_fields(self) -> tuple[str, ...]:
        """The family-only config keys its trainer reads: in its train stage key, no other family's."""
        return tuple(name for group in self.options if group.in_train_key for name in group.model_fields)

    @property
    def fields_keyed_when_set(self) -> tuple[str, ...]:
        """Its keys added after runs were keyed: in its stage keys only when set away from their default."""
        return tuple(name for group in self.options for name in group.keyed_when_set)

    @property
    def skipped_for_training(self) -> tuple[str, ...]:
        """Pipeline components training leaves unloaded: it reads cached latents and embeddings."""
        return (*_NEVER_TRAINED, *self.text_components)
