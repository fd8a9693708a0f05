"""The training report (JSON: losses per step) and the model card (README.md) beside the weights."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig
    from dreamcore.models import ModelFamily
    from dreamcore.train.trainer import TrainOutcome

_CARD_FIELDS = (
    "pretrained_model_name_or_path", "model_type", "lora_type", "lora_rank", "lora_alpha", "lora_dropout",
    "lora_init_type", "peft_lora_target_modules", "lycoris_config", "base_model_precision", "learning_rate", "lr_scheduler",
    "lr_warmup_steps", "max_train_steps", "train_batch_size", "gradient_accumulation_steps", "optimizer",
    "max_grad_norm", "grad_clip_method", "mixed_precision", "seed", "snr_gamma", "prior_loss_weight", "prior_preservation_target",
    "masked_loss_normalise_by_area", "use_ema", "ema_decay", "ema_update_interval", "ema_device",
    "scheduled_sampling_max_step_offset", "scheduled_sampling_probability", "scheduled_sampling_prob_start",
    "scheduled_sampling_prob_end", "scheduled_sampling_ramp_steps", "scheduled_sampling_sampler",
    "checkpointing_steps", "checkpoints_total_limit",
)


def training_report(config: TrainingConfig, outcome: TrainOutcome, exports: dict[str, str],
                    ema_exports: dict[str, str]) -> dict[str, Any]:
    """JSON report: the loss history, what was trained and where the weights are."""
    history = outcome.history
    return {
        "adapter": outcome.adapter.kind,
        "wrapped_modules": outcome.adapter.wrapped_modules,
        "family": outcome.base.family.name,
        "prediction_type": outcome.base.prediction_type,
        "steps": len(history),
        "resumed_from": outcome.resumed_from,
        "final_loss": history[-1]["loss"] if history else None,
        "history": history,
        "exports": exports,
        "ema_exports": ema_exports,
        "parameters": {name: getattr(config, name) for name in _CARD_FIELDS},
    }


def model_card(config: TrainingConfig, outcome: TrainOutcome, exports: dict[str, str],
               ema_exports: dict[str, str]) -> str:
    """A README.md with the training parameters and how to load each exported file."""
    history = outcome.history
    rows = "\n".join(f"| `{name}` | `{getattr(config, name)}` |" for name in _CARD_FIELDS)
    files = "\n".join(f"- `{name}`: `{path}`" for name, path in {**exports, **_prefixed(ema_exports)}.items())
    final = f"{history[-1]['loss']:.5f}" if history else "n/a"
    return f"""---
base_model: {config.pretrained_model_name_or_path}
library_name: diffusers
tags: [dreambooth, {outcome.base.family.name}, {outcome.adapter.kind}, dreamcore]
---

# Dreambooth {outcome.adapter.kind} for {config.pretrained_model_name_or_path}

Trained by dreamcore: {len(history)} optimiser steps, final loss {final}, {outcome.adapter.wrapped_modules}
modules trained, model family {outcome.base.family.name}, prediction type {outcome.base.prediction_type}.

## Files

{files}

## How to load

{_how_to_load(outcome.adapter.kind, outcome.base.family)}

## Training parameters

| parameter | value |
|---|---|
{rows}
"""


def _prefixed(ema_exports: dict[str, str]) -> dict[str, str]:
    return {f"ema_{name}": path for name, path in ema_exports.items()}


def _how_to_load(kind: str, family: ModelFamily) -> str:
    pipeline, denoiser = family.pipeline_class, family.denoiser
    if kind == "lora":
        formats = {
            "diffusers_lora": f"diffusers: `{pipeline}.load_lora_weights('export/diffusers', "
                              "weight_name='pytorch_lora_weights.safetensors')`.",
            "kohya_lora": "ComfyUI / AUTOMATIC1111 / kohya: `export/kohya/lora_kohya.safetensors` "
                          "(lora_unet_... keys with .alpha).",
            "comfyui_lora": "ComfyUI: `export/comfyui/lora_comfyui.safetensors` (kohya sd-scripts' Flux keys, "
                            "lora_unet_double_blocks_N_..., fused qkv / linear1, with .alpha).",
        }
        return " ".join(formats[name] for name in family.lora_exports) + " EMA weights: the same files under `export/ema/`."
    if kind == "lycoris":
        return ("LyCORIS: `lycoris.create_lycoris_from_weights(1.0, 'export/lycoris/lycoris.safetensors', "
                f"pipe.{denoiser})[0].apply_to()` (ComfyUI reads the same file). EMA weights under `export/ema/`.")
    return (f"diffusers: `{pipeline}.from_pretrained('export/pipeline')`. "
            f"The EMA {denoiser} is `export/ema/{denoiser}`: `from_pretrained` of its model class.")
