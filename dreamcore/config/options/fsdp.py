"""FSDP2: the trained denoiser sharded over the training processes (SimpleTuner's fsdp_* keys).

Not in the train stage key: sharding decides where the tensors live, not what is computed (the losses equal
the data-parallel run's to float rounding, tests/dreamcore/train/test_fsdp_training.py), as ray_address and
machine_rank stay out of it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

FSDP_FIELDS = ("fsdp_enable", "fsdp_version", "fsdp_reshard_after_forward", "fsdp_state_dict_type",
               "fsdp_auto_wrap_policy", "fsdp_transformer_layer_cls_to_wrap", "fsdp_activation_checkpointing",
               "fsdp_cpu_offload")


class FsdpOptions(BaseModel):
    """Fully sharded data parallel training (torch's fully_shard) of the family's denoiser."""

    fsdp_enable: bool = Field(
        False, description="Shard the denoiser's parameters, gradients and optimiser state over the training "
        "processes (num_processes x num_machines >= 2) with torch's FSDP2 (fully_shard), instead of keeping a "
        "full copy in every process (data parallel). LoRA (peft) and full fine-tunes.")
    fsdp_version: Literal[2] = Field(
        2, description="2: torch's DTensor-based fully_shard. FSDP 1 is deprecated in torch and not implemented.")
    fsdp_reshard_after_forward: bool = Field(
        True, description="Free each block's gathered parameters after its forward and gather them again for "
        "backward (less memory, more communication); false keeps them until backward.")
    fsdp_state_dict_type: Literal["SHARDED_STATE_DICT", "FULL_STATE_DICT"] = Field(
        "SHARDED_STATE_DICT", description="Checkpoint layout: SHARDED_STATE_DICT, every process writes its own "
        "shards (torch.distributed.checkpoint, in the checkpoint's `sharded/` folder); FULL_STATE_DICT, the "
        "tensors are gathered and the main process writes them as a data-parallel run does. Either resumes; "
        "exports are always whole.")
    fsdp_auto_wrap_policy: Literal["TRANSFORMER_BASED_WRAP", "NO_WRAP"] = Field(
        "TRANSFORMER_BASED_WRAP", description="TRANSFORMER_BASED_WRAP: each block of the classes in "
        "fsdp_transformer_layer_cls_to_wrap (default: the denoiser's own `_no_split_modules`, e.g. the UNet's "
        "transformer and resnet blocks, Flux's transformer blocks) is gathered on its own; NO_WRAP: the "
        "whole denoiser is one unit (gathered at once).")
    fsdp_transformer_layer_cls_to_wrap: list[str] | None = Field(
        None, description="Class names of the denoiser blocks sharded as units (a list or a comma-separated "
        "string), e.g. BasicTransformerBlock,ResnetBlock2D; default: the denoiser's `_no_split_modules`.")
    fsdp_activation_checkpointing: bool = Field(
        False, description="Recompute the blocks' activations in backward (the denoiser's own gradient "
        "checkpointing, as gradient_checkpointing).")
    fsdp_cpu_offload: bool = Field(
        False, description="Keep the sharded parameters, gradients and optimiser state in CPU memory "
        "(torch's CPUOffloadPolicy); the optimiser steps on the CPU.")

    @field_validator("fsdp_version", mode="before")
    @classmethod
    def _version(cls, value):
        if str(value).strip() == "1":
            raise ValueError("fsdp_version 1 (FSDP1, deprecated in torch) is not implemented: set fsdp_version 2")
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @field_validator("fsdp_state_dict_type", "fsdp_auto_wrap_policy", mode="before")
    @classmethod
    def _upper(cls, value):
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("fsdp_transformer_layer_cls_to_wrap", mode="before")
    @classmethod
    def _class_names(cls, value):
        if value in (None, "", "None"):
            return None
        names = value.split(",") if isinstance(value, str) else value
        return [str(name).strip() for name in names if str(name).strip()] or None
