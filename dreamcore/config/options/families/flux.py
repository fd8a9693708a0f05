"""Flux's own keys: guidance while training, attention masking, the LoRA target presets.

Read by the Flux family (dreamcore/models/families/flux/).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from dreamcore.config.options.families.base import FamilyOptions

# SimpleTuner's flux_lora_target presets: Flux transformer module names (or suffixes) the peft LoRA wraps.
_ATTENTION = ("to_k", "to_q", "to_v", "to_out.0")
_CONTEXT = ("add_k_proj", "add_q_proj", "add_v_proj", "to_add_out")
_FFS = ("ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2", "proj_mlp", "proj_out")
FLUX_LORA_TARGETS = {
    "mmdit": _ATTENTION,  # the image stream's attention only: no text input layers
    "context": _CONTEXT,
    "context+ffs": (*_CONTEXT, "ff_context.net.0.proj", "ff_context.net.2"),
    "all": (*_ATTENTION, *_CONTEXT),
    "all+ffs": (*_ATTENTION, *_CONTEXT, *_FFS),
    "ai-toolkit": (*_ATTENTION, *_CONTEXT, *_FFS[:4], "norm.linear", "norm1.linear", "norm1_context.linear",
                   *_FFS[4:]),
}


class FluxOptions(FamilyOptions):
    """Flux's own keys: guidance while training, attention masking, the LoRA target presets."""

    keyed_when_set: ClassVar[tuple[str, ...]] = ("flux_attention_masked_training",)
    read_by_evaluation: ClassVar[tuple[str, ...]] = ("flux_attention_masked_training",)

    flux_lora_target: Literal["mmdit", "context", "context+ffs", "all", "all+ffs", "ai-toolkit"] = Field(
        "all",
        description="Flux, peft LoRA: which layers train (SimpleTuner's presets). mmdit: image attention; context: "
        "text attention; context+ffs: text attention and feed-forward; all: both attentions; all+ffs: also every "
        "feed-forward; ai-toolkit: all+ffs and the norms. peft_lora_target_modules, when set, wins.",
    )
    flux_guidance_mode: Literal["constant", "random-range"] = Field(
        "constant",
        description="Flux: the guidance value the transformer is given while training: constant "
        "(flux_guidance_value) or random-range (uniform in [flux_guidance_min, flux_guidance_max] per sample).",
    )
    flux_guidance_value: float = Field(
        1.0, description="Flux, constant mode: the guidance of every sample (1.0 keeps Flux.1-dev's distillation)."
    )
    flux_guidance_min: float = Field(0.0, description="Flux, random-range mode: lowest guidance.")
    flux_guidance_max: float = Field(4.0, description="Flux, random-range mode: highest guidance.")
    flux_attention_masked_training: bool = Field(
        False, description="Flux: the transformer attends only to real T5 tokens (the cached T5 attention mask), "
        "not to padding."
    )

    @model_validator(mode="after")
    def _check_flux_guidance(self) -> FluxOptions:
        if self.flux_guidance_mode == "random-range" and self.flux_guidance_min > self.flux_guidance_max:
            raise ValueError(f"flux_guidance_min {self.flux_guidance_min} is above flux_guidance_max "
                             f"{self.flux_guidance_max}")
        return self
