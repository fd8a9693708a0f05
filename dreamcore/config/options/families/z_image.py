"""Z-Image's own key: whether the turbo flavours' assistant LoRA is off, and the flavour checks it goes with.

Read by the Z-Image family (dreamcore/models/families/z_image/). SimpleTuner trains a LoRA on the
distilled turbo flavours (turbo, turbo-ostris-v2) through ostris' training adapter, an assistant LoRA it
downloads and keeps fused under the trained LoRA, unless disable_assistant_lora is set. dreamcore loads no
assistant LoRA (assistant_lora_path is refused), so such a config must say so: disable_assistant_lora true
(the turbo transformer is trained as it is, as SimpleTuner does with that key) or the base flavour.
ostris-de-turbo swaps in ostris/Z-Image-De-Turbo's transformer (SimpleTuner's
pretrained_transformer_model_name_or_path); dreamcore loads every component from one folder, so that flavour
needs pretrained_model_name_or_path naming a folder that holds it.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from dreamcore.config.options.families.base import FamilyOptions

# SimpleTuner's Z-Image flavours trained through its assistant LoRA (ASSISTANT_LORA_FLAVOURS).
ASSISTED_FLAVOURS = ("turbo", "turbo-ostris-v2")
TURBO_HUB_ID = "TONGYI-MAI/Z-Image-Turbo"


class ZImageOptions(FamilyOptions):
    """Z-Image's own key: disable_assistant_lora (checked with the flavour, model_type and model path)."""

    # Training never reads it: it only admits configs whose training is the same without an assistant LoRA.
    in_train_key: ClassVar[bool] = False

    disable_assistant_lora: bool = Field(
        False,
        description="Z-Image turbo flavours (turbo, turbo-ostris-v2), LoRA: train the turbo transformer as it is, "
        "without SimpleTuner's assistant (training adapter) LoRA, which dreamcore does not load; a LoRA config of "
        "those flavours must set it (or use model_flavour base).",
    )

    @model_validator(mode="after")
    def _check_z_image_flavour(self):
        # Composed into TrainingConfig: the model keys are fields of the same object.
        if getattr(self, "model_family", None) != "z_image":
            return self
        flavour, path = getattr(self, "model_flavour", None), getattr(self, "pretrained_model_name_or_path", None)
        if flavour in ASSISTED_FLAVOURS and getattr(self, "model_type", "lora") == "lora" \
                and not self.disable_assistant_lora:
            raise ValueError(
                f"model_flavour {flavour!r}: SimpleTuner trains a Z-Image turbo LoRA through ostris' assistant LoRA "
                "(ostris/zimage_turbo_training_adapter), which dreamcore does not load; set disable_assistant_lora: "
                "true to train the turbo transformer without it, or model_flavour: base")
        if flavour == "ostris-de-turbo" and path == TURBO_HUB_ID:
            raise ValueError(
                "model_flavour 'ostris-de-turbo': SimpleTuner swaps in ostris/Z-Image-De-Turbo's transformer, but "
                "dreamcore loads every component from pretrained_model_name_or_path; set it to a local Z-Image "
                "folder whose transformer is the de-turbo one")
        return self
