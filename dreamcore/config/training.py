"""The training config: SimpleTuner's config.json keys, typed, one flat object.

Fields are grouped by concern in dreamcore/config/options/ (one module per group) so each area
of the product owns its keys, and each family its own (config/options/families/); the groups are
combined here into the one flat config that SimpleTuner's files, the CLI and the Prefect form all use.
"""

from __future__ import annotations

from pydantic import ConfigDict, model_validator

from dreamcore.config.form import arrange_form
from dreamcore.config.options.cache import CacheOptions
from dreamcore.config.options.families import FAMILY_OPTIONS
from dreamcore.config.options.fsdp import FsdpOptions
from dreamcore.config.options.generation import GenerationOptions
from dreamcore.config.options.model import ModelOptions
from dreamcore.config.options.paths import PathOptions
from dreamcore.config.options.refine import RefineOptions
from dreamcore.config.options.retrain import RetrainOptions
from dreamcore.config.options.tracking import TrackingOptions
from dreamcore.config.options.train import TrainOptions
from dreamcore.config.options.validation import ValidationOptions


# Pydantic lists the last base's fields first: model, training, the family-only groups, validation, paths.
class TrainingConfig(RetrainOptions, TrackingOptions, RefineOptions, GenerationOptions, CacheOptions, PathOptions,
                     ValidationOptions, *reversed(FAMILY_OPTIONS), FsdpOptions, TrainOptions, ModelOptions):
    """What to train and how. Field names are SimpleTuner's, so its config.json loads as-is."""

    # The Prefect form's order and group titles come from config/form.py, whatever the declaration order.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, json_schema_extra=arrange_form)

    @model_validator(mode="after")
    def _check_combinations(self) -> TrainingConfig:
        if self.model_type == "full" and self.base_model_precision != "no_change":
            raise ValueError(
                f"base_model_precision {self.base_model_precision!r} needs model_type 'lora': a quantised "
                "base can only be trained through an adapter. Set base_model_precision to 'no_change'."
            )
        if self.enable_group_offload and self.model_type == "full":
            raise ValueError("enable_group_offload needs model_type 'lora': a full fine-tune updates the weights the "
                             "offloaded groups hold (offload to disk would bring back the weights of step 0). Use "
                             "gradient_checkpointing or a LoRA.")
        if self.enable_group_offload and self.fsdp_enable:
            raise ValueError("enable_group_offload with fsdp_enable: FSDP already moves each process's shard of the "
                             "weights (fsdp_cpu_offload keeps them in CPU memory); use one or the other.")
        if self.enable_group_offload and self.base_model_precision != "no_change":
            raise ValueError(f"enable_group_offload with base_model_precision {self.base_model_precision!r}: the "
                             "quantisers place the weights themselves and offloading them is not tested; set "
                             "base_model_precision 'no_change' or drop enable_group_offload.")
        if self.lora_type == "lycoris" and self.model_type == "lora" and not self.lycoris_config:
            raise ValueError("lora_type 'lycoris' needs lycoris_config: the path to a LyCORIS JSON config.")
        if self.fsdp_enable:
            _check_fsdp(self)
        return self

    @property
    def resolved_storage_root(self) -> str:
        """The artifact root URL, defaulting under output_dir."""
        return self.storage_root or f"{self.output_dir.rstrip('/')}/artifacts"


def _check_fsdp(config: TrainingConfig) -> None:
    """Refuse, by key, what FSDP training does not do: what runs the model on the main process alone (the
    in-training monitor, the EMA copy) or a different number of times per process (rollout), and what cannot shard."""
    if config.num_processes * config.num_machines < 2:
        raise ValueError("fsdp_enable shards the denoiser over the training processes: set num_processes (or "
                         "num_machines) so that num_processes x num_machines >= 2")
    refused = {
        "lora_type 'lycoris'": config.model_type == "lora" and config.lora_type == "lycoris",
        f"base_model_precision {config.base_model_precision!r} (a quantised base has no sharded tensors)":
            config.base_model_precision != "no_change",
        "use_ema (the EMA copy lives on the main process)": config.use_ema,
        "validation_steps (in-training validation runs on the main process)": bool(config.validation_steps),
        "eval_steps_interval (the in-training eval loss runs on the main process)": bool(config.eval_steps_interval),
        "scheduled_sampling_max_step_offset (rollout runs the model a different number of times per process)":
            config.scheduled_sampling_max_step_offset > 0,
    }
    found = [what for what, on in refused.items() if on]
    if found:
        raise ValueError(f"fsdp_enable cannot train with {'; '.join(found)}: unset it, or train data parallel "
                         "without fsdp_enable (the evaluate stage validates the checkpoints and the final weights)")
