"""The order and group titles of the training fields in the Prefect run form (the JSON schema of RunConfig).

Prefect 3's UI lists an object's properties sorted by each property's `position` (missing: in schema order)
and labels each with its `title`; it has no sections. So the schema of TrainingConfig gets, from the one
ordered table FORM_GROUPS (independent of which options module declares a field): the properties in that
order, a `position` each, and a title that starts with its group ("Essentials · Lora Rank"). What a
DreamBooth user sets comes first, then the rest by purpose. Field names (the config file's keys) are unchanged.
"""

from __future__ import annotations

from typing import Any

from dreamcore.config.options.families import FAMILY_OPTIONS
from dreamcore.config.options.fsdp import FSDP_FIELDS

OTHER_GROUP = "Other settings"  # fields no group names (a new field lands here until it is placed)
# Family-only keys, by the families' option groups: those the caches read sit with the data settings, those
# only validation reads with validation's, those the trainer reads in their own group (so a family's keys are
# named in its own module only).
_FAMILY_VALIDATION_KEYS = tuple(name for group in FAMILY_OPTIONS if not group.in_train_key
                                for name in group.read_by_evaluation)
_FAMILY_CACHE_KEYS = tuple(name for group in FAMILY_OPTIONS if not group.in_train_key for name in group.model_fields
                           if name not in _FAMILY_VALIDATION_KEYS)
_FAMILY_TRAIN_KEYS = tuple(name for group in FAMILY_OPTIONS if group.in_train_key for name in group.model_fields)

FORM_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Essentials", (
        "model_family", "pretrained_model_name_or_path", "model_flavour", "model_type", "lora_type", "lora_rank",
        "learning_rate", "max_train_steps", "train_batch_size", "validation_prompt")),
    ("Adapter and model", (
        "lora_alpha", "lora_dropout", "lora_init_type", "peft_lora_target_modules", "lycoris_config",
        "init_weights", "prediction_type", "base_model_precision", "text_encoder_1_precision",
        "text_encoder_2_precision", "text_encoder_3_precision")),
    ("Data", (
        "data_backend_config", "caption_dropout_probability", "prior_loss_weight", "prior_preservation_target",
        "masked_loss_normalise_by_area", "allow_dataset_oversubscription", "mask_generation", "class_images",
        "aspect_bucket_alignment", "tokenizer_max_length", *_FAMILY_CACHE_KEYS, "cache_dtype", "vae_batch_size",
        "text_embed_batch_size", "cache_shard_size")),
    ("Optimiser", (
        "optimizer", "optimizer_config", "lr_scheduler", "lr_warmup_steps", "lr_num_cycles", "lr_power", "lr_end",
        "adam_beta1", "adam_beta2", "adam_weight_decay", "adam_epsilon", "max_grad_norm", "grad_clip_method",
        "gradient_accumulation_steps", "seed")),
    ("Loss, EMA and rollout", (
        "loss_type", "huber_schedule", "huber_c", "snr_gamma", "use_ema", "ema_decay", "ema_update_interval",
        "ema_device", "scheduled_sampling_max_step_offset", "scheduled_sampling_probability",
        "scheduled_sampling_ramp_steps", "scheduled_sampling_prob_start", "scheduled_sampling_prob_end",
        "scheduled_sampling_start_step", "scheduled_sampling_ramp_shape", "scheduled_sampling_sampler")),
    ("Precision, memory and checkpoints", (
        "mixed_precision", "gradient_checkpointing", "enable_group_offload", "group_offload_type",
        "group_offload_blocks_per_group", "group_offload_use_stream", "group_offload_to_disk_path",
        "checkpointing_steps", "checkpoints_total_limit")),
    ("Scaling out", (
        "num_processes", "num_machines", "machine_rank", "main_process_ip", "main_process_port", "ray_address",
        *FSDP_FIELDS)),
    ("Validation and evaluation", (
        "validation_disable", "validation_negative_prompt", "num_validation_images", "validation_seed",
        "validation_num_inference_steps", "validation_guidance", "validation_resolution",
        "validation_guidance_rescale", "validation_steps", "validation_preview", "validation_preview_steps",
        "validation_preview_vae", *_FAMILY_VALIDATION_KEYS, "disable_benchmark", "evaluation_type", "pretrained_evaluation_model_name_or_path",
        "evaluation_prompt_set", "evaluation_prompt", "evaluation_token", "evaluation_class",
        "evaluation_images_per_prompt", "evaluation_quick", "evaluation_batch_size", "evaluation_dino_model",
        "eval_steps_interval", "eval_timesteps", "eval_dataset_id", "eval_dataset_fraction", "num_eval_images")),
    ("Refiner", (
        "refiner_training", "refiner_training_strength", "refiner_training_invert_schedule",
        "sdxl_refiner_uses_full_range", "data_aesthetic_score", "refiner_model_name_or_path", "refiner_lora_path",
        "refiner_negative_aesthetic_score")),
    ("Family-only (SD3, Flux)", _FAMILY_TRAIN_KEYS),
    ("Output, tracking and notifications", (
        "output_dir", "storage_root", "report_to", "tracker_project_name", "tracker_run_name", "logging_dir",
        "mlflow_tracking_uri", "webhook_config", "retrain_guard")),
)


def form_order(names: list[str]) -> list[tuple[str, str]]:
    """(group title, field name) for every name, in form order; names no group lists come last, under
    OTHER_GROUP, in their own order."""
    placed = [(title, name) for title, members in FORM_GROUPS for name in members if name in names]
    listed = {name for _, name in placed}
    return placed + [(OTHER_GROUP, name) for name in names if name not in listed]


def arrange_form(schema: dict[str, Any]) -> None:
    """pydantic json_schema_extra: properties in form order, each with its `position` and a group-titled label."""
    properties = schema.get("properties", {})
    arranged = {}
    for position, (group, name) in enumerate(form_order(list(properties))):
        field = dict(properties[name])
        field["title"] = f"{group} · {field.get('title') or name}"
        field["position"] = position
        arranged[name] = field
    schema["properties"] = arranged
