"""dreamcore's defaults against SimpleTuner's: the one list of deliberate differences, each with its reason.

Every honoured config.json key defaults to SimpleTuner's default (its field registry's default_value at
simpletuner_keys.SIMPLETUNER_COMMIT, captured in tests/fixtures/simpletuner/keys.json), or is listed here:
- DIFFERENT_DEFAULTS: dreamcore trains (or writes) something else when the key is unset. `config check` and
  `run` print a note for each such key the config leaves unset (default_notes).
- SAME_MEANING: SimpleTuner's default is spelled differently but means what dreamcore's does (no note).
tests/dreamcore/config/test_defaults.py compares the tables with the captured ones and fails on any other
difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dreamcore.config.options.model import FLAVOUR_FALLBACK_FAMILIES, MODEL_FLAVOURS
from dreamcore.config.training import TrainingConfig


@dataclass(frozen=True)
class DefaultDifference:
    """SimpleTuner's default of a key, why dreamcore's differs, and when the difference matters."""

    simpletuner: Any
    reason: str
    applies: Callable[[TrainingConfig], bool] = lambda config: True
    changes_weights: bool = True  # False: said in one summary note, not one note each


_WEIGHTS_SAME = "cannot change the trained weights"
_VALIDATION = f"validation images only ({_WEIGHTS_SAME}): unset draws without a negative prompt"
_NAMES = f"a name or folder ({_WEIGHTS_SAME}): dreamcore's own"


def _flavour_fallback_skipped(config: TrainingConfig) -> bool:
    return not config.pretrained_model_name_or_path and config.model_family in MODEL_FLAVOURS \
        and config.model_family not in FLAVOUR_FALLBACK_FAMILIES


def _ramps(config: TrainingConfig) -> bool:
    return config.scheduled_sampling_ramp_steps > 0


_RAMP = ("rollout ramp only: dreamcore ramps from 0.0 to scheduled_sampling_probability unless told; SimpleTuner's "
         "defaults ramp from scheduled_sampling_probability (it reads its 0.0 start as unset) to 0.5")

DIFFERENT_DEFAULTS: dict[str, DefaultDifference] = {
    "model_family": DefaultDifference(
        None, "SimpleTuner requires it; dreamcore detects the family from the model's files, so it only picks "
        "the {model_family} placeholder and the flavour table"),
    "model_flavour": DefaultDifference(
        None, "for sd1x, sd2x and sdxl SimpleTuner trains its default flavour's hub model when no model is given; "
        "dreamcore asks for pretrained_model_name_or_path (or an explicit model_flavour) instead of picking a base "
        "model for you", _flavour_fallback_skipped),
    "model_type": DefaultDifference(
        "full", "dreamcore is DreamBooth LoRA first (a full fine-tune holds the whole model's optimiser state); "
        "set model_type 'full' for SimpleTuner's default"),
    "learning_rate": DefaultDifference(
        4e-07, "SimpleTuner's default suits a full fine-tune; 1e-4 is a LoRA learning rate (dreamcore's default "
        "model_type)"),
    "max_train_steps": DefaultDifference(
        None, "SimpleTuner then trains num_train_epochs (1) epochs; dreamcore counts optimiser steps only "
        "(num_train_epochs is refused), so it needs a number"),
    "train_batch_size": DefaultDifference(
        4, "one image per step fits every accelerator and a DreamBooth subject's few images"),
    "optimizer": DefaultDifference(
        "adamw_bf16", "adamw_bf16 needs torch-optimi and bf16 weights; auto is bitsandbytes' 8-bit AdamW on CUDA, "
        "else torch's AdamW"),
    "seed": DefaultDifference(None, "a fixed seed makes a rerun reproduce the run, which dreamcore's stage cache "
                                    "assumes"),
    "gradient_checkpointing": DefaultDifference(
        True, f"memory only ({_WEIGHTS_SAME}); off is faster where memory allows", changes_weights=False),
    "lycoris_config": DefaultDifference(
        "config/lycoris_config.json", "a path in SimpleTuner's folder layout; dreamcore asks for it with "
                                      "lora_type 'lycoris'", changes_weights=False),
    "checkpoints_total_limit": DefaultDifference(
        5, f"checkpoint housekeeping ({_WEIGHTS_SAME}): dreamcore keeps every checkpoint unless told", changes_weights=False),
    "scheduled_sampling_prob_start": DefaultDifference(0.0, _RAMP, _ramps),
    "scheduled_sampling_prob_end": DefaultDifference(0.5, _RAMP, _ramps),
    "validation_negative_prompt": DefaultDifference("blurry, cropped, ugly", _VALIDATION, changes_weights=False),
    "validation_resolution": DefaultDifference("256", f"validation images only ({_WEIGHTS_SAME}): unset draws at "
                                                      "the model's own size", changes_weights=False),
    "validation_steps": DefaultDifference(100, f"validation images only ({_WEIGHTS_SAME}): unset draws them at "
                                               "the end only", changes_weights=False),
    "num_eval_images": DefaultDifference(4, f"eval loss only ({_WEIGHTS_SAME}): unset uses every eval image", changes_weights=False),
    "pretrained_evaluation_model_name_or_path": DefaultDifference(
        "openai/clip-vit-large-patch14-336", f"evaluation only ({_WEIGHTS_SAME}): dreamcore never downloads a model, "
        "so it asks for the CLIP model evaluation_type 'clip' should use", changes_weights=False),
    "output_dir": DefaultDifference("simpletuner-results", _NAMES, changes_weights=False),
    "tracker_project_name": DefaultDifference("simpletuner", _NAMES, changes_weights=False),
    "tracker_run_name": DefaultDifference("simpletuner-testing", _NAMES, changes_weights=False),
}

# SimpleTuner's default is another spelling of dreamcore's (no note).
SAME_MEANING: dict[str, tuple[Any, str]] = {
    "lr_scheduler": ("constant_with_warmup", "'constant' with lr_warmup_steps > 0 becomes constant_with_warmup "
                                             "(SimpleTuner's normalize_lr_scheduler_value); with 0 they are one"),
    "logging_dir": ("./logs", "the same folder"),
    "caption_dropout_probability": (None, "unset: no caption dropout"),
    "group_offload_to_disk_path": ("", "unset: offload to CPU memory, not to disk"),
}


def default_notes(config: TrainingConfig) -> list[str]:
    """The deliberate differences that apply to `config` because it leaves the key unset: one line for each
    that can change the trained weights, then one line naming the others."""
    notes, others = [], []
    for key, difference in DIFFERENT_DEFAULTS.items():
        if key in config.model_fields_set or not difference.applies(config):
            continue
        ours = TrainingConfig.model_fields[key].default
        if difference.changes_weights:
            notes.append(f"key {key!r} unset: dreamcore's default {ours!r} is not SimpleTuner's "
                         f"{difference.simpletuner!r} ({difference.reason})")
        else:
            others.append(f"{key} {ours!r} (SimpleTuner {difference.simpletuner!r})")
    if others:
        notes.append(f"unset keys that cannot change the trained weights default otherwise than in SimpleTuner "
                     f"(docs/simpletuner-keys.md says why): {', '.join(others)}")
    return notes
