"""The train stage's plan: what one training reads and its key, resolved once per run.

`plan_training` detects the family and fingerprints the base model once; the flow, the task's cache key,
`dreamcore run --stage train`, the launched processes (the plan travels in their job file), the trackers and
the stage itself read the plan instead of keying the config again. The plan is frozen and JSON-serialisable,
so it is a Prefect parameter and can be shipped to another machine.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dreamcore.config import DatasetSpec, RunConfig, TrainingConfig
from dreamcore.config.fields import differs_from_default
from dreamcore.config.options.model import ModelOptions
from dreamcore.config.options.train import TrainOptions, changes_trained_weights
from dreamcore.models import ModelFamily, detect_family, family_named, model_fingerprint
from dreamcore.storage import StageDetails, StageResult, digest_of, stage_key
from dreamcore.train.adapters import load_lycoris_spec
from dreamcore.train.base import resolve_family
from dreamcore.train.init_weights import init_weights_digest

TRAIN_STAGE = "train"
TRAIN_VERSION = 1
# Read at cache time (their effect reaches us through the cache digests) or replaced by content.
# model_flavour only names the model, whose fingerprint is in the key.
_NOT_IN_KEY = {"pretrained_model_name_or_path", "model_flavour", "lycoris_config", "text_encoder_1_precision",
               "text_encoder_2_precision", "text_encoder_3_precision", "init_weights",
               # where a machine sits or which cluster runs it, not what it trains
               "machine_rank", "main_process_ip", "main_process_port", "ray_address",
               # where the frozen weights wait between uses, not what is trained (the losses are equal)
               "enable_group_offload", "group_offload_type", "group_offload_blocks_per_group",
               "group_offload_use_stream", "group_offload_to_disk_path"}
# Fields added after runs were keyed: in the key only when set away from their default, so the keys of
# runs that do not use them stay what they were.
_KEYED_WHEN_SET = ("optimizer_config", "lr_end", "loss_type", "huber_schedule", "huber_c",
                   "caption_dropout_probability", "allow_dataset_oversubscription",
                   "num_processes", "num_machines")  # a larger effective batch (the family adds its own)
# Per-dataset settings read while batches are drawn, so no cache digest holds them: keyed when a dataset
# sets one away from its default (unset adds nothing, so the keys of runs that use none stay the same).
_DRAWING_FIELDS = ("repeats", "probability", "caption_dropout_probability")


class CacheResults(BaseModel):
    """What the cache stage hands training: each image dataset's VAE cache (by dataset id) and the text cache."""

    model_config = ConfigDict(frozen=True)

    vae_cache: dict[str, StageResult]
    text_cache: StageResult


class TrainDetails(StageDetails):
    """What a committed training hands evaluation, refine and retraining (its result's `details`)."""

    adapter: str | None = None
    family: str | None = None
    prediction_type: str | None = None
    final_loss: float | None = None
    exports: dict[str, str] = Field(default_factory=dict, description="export format -> URI")
    ema_exports: dict[str, str] = Field(default_factory=dict, description="EMA export format -> URI")
    upstream: dict[str, str] = Field(default_factory=dict, description="the upstream digests it was keyed with")


class TrainPlan(BaseModel):
    """One training, resolved: the options the trainer reads, the datasets its batches are drawn from, the
    family, the upstream caches and their digests, the keyed fields, the base model's fingerprint and the key."""

    model_config = ConfigDict(frozen=True)

    training: TrainingConfig
    datasets: list[DatasetSpec] = Field(default_factory=list, description="the run's datasets (batch drawing, held-out rows)")
    family: str = Field(description="the base model's family name (models.families)")
    keep_reference: bool = Field(description="a full fine-tune keeps a frozen base copy for regularisation data")
    caches: CacheResults | None = Field(default=None, description="the cache stage's results trained on")
    upstream: dict[str, str] = Field(description="the upstream digests in the key")
    fields: dict[str, Any] = Field(description="the training fields in the key (also the trackers' hyperparameters)")
    model_fingerprint: str = Field(description="the denoiser and noise schedule's fingerprint")
    key: str

    @property
    def run_config(self) -> RunConfig:
        """The run config this plan trains (the batch source and the in-training monitor read its datasets)."""
        return RunConfig(training=self.training, datasets=self.datasets)

    def model_family(self) -> ModelFamily:
        """The family object of `family`."""
        return family_named(self.family)


def plan_training(config: RunConfig | TrainingConfig, upstream: dict[str, str],
                  caches: CacheResults | None = None) -> TrainPlan:
    """The plan of training `config` on upstream results of these digests: the family detected and the base
    model fingerprinted once (a TrainingConfig alone: no datasets, and a full fine-tune keeps its base copy)."""
    training = config.training if isinstance(config, RunConfig) else config
    if not training.pretrained_model_name_or_path:
        raise ValueError("pretrained_model_name_or_path is required to train: a model folder or hub id")
    family = resolve_family(training)
    datasets = list(config.datasets) if isinstance(config, RunConfig) else []
    keep_reference = any(spec.is_regularisation_data for spec in datasets) if isinstance(config, RunConfig) else True
    keying = TrainKeying.of(training, family)
    return TrainPlan(training=training, datasets=datasets, family=family.name, keep_reference=keep_reference,
                     caches=caches, upstream=dict(upstream), fields=keying.fields,
                     model_fingerprint=keying.fingerprint, key=keying.key(upstream))


def plan_training_on_caches(config: RunConfig, caches: CacheResults) -> TrainPlan:
    """The plan of training `config` on the cache stage's results."""
    return plan_training(config, cache_digests(caches, config), caches)


class TrainKeying(BaseModel):
    """The key material of a config that does not depend on the upstream caches (one per config, many keys)."""

    fields: dict[str, Any]
    fingerprint: str

    @classmethod
    def of(cls, training: TrainingConfig, family: ModelFamily) -> TrainKeying:
        """The keyed fields and the base model fingerprint of `training` for its (detected) family."""
        return cls(fields=training_fields(training, family), fingerprint=base_model_fingerprint(training, family))

    def key(self, upstream: dict[str, str]) -> str:
        """The train stage key for these upstream digests."""
        return stage_key(TRAIN_STAGE, TRAIN_VERSION, self.fields, upstream, self.fingerprint)


def cache_digests(caches: CacheResults, config: RunConfig) -> dict[str, str]:
    """The upstream digests of the train stage key: every VAE cache (by dataset id) and the text cache, plus
    the datasets' own repeats, probability and caption_dropout_probability where set."""
    digests = {f"vae_cache/{dataset_id}": result.digest for dataset_id, result in sorted(caches.vae_cache.items())}
    digests |= {"text_cache": caches.text_cache.digest}
    for name in _DRAWING_FIELDS:
        own = {d.id: getattr(d, name) for d in config.datasets if differs_from_default(d, name)}
        if own:
            digests[f"datasets/{name}"] = digest_of(dict(sorted(own.items())))
    return digests


def training_fields(config: TrainingConfig, family: ModelFamily | None = None) -> dict[str, Any]:
    """The config fields the trainer reads, as hashed into the stage key (`family`: the detected one; None:
    detected here).

    Family-only fields (the family's option groups) count only for the family that reads them, so adding them left
    the keys of SD 1.x/2.x and SDXL runs as they were.
    """
    if family is None:
        family = detect_family(config.pretrained_model_name_or_path)
    names = ((set(ModelOptions.model_fields) | set(TrainOptions.model_fields)) - _NOT_IN_KEY) | set(family.trained_fields)
    keyed_when_set = (*_KEYED_WHEN_SET, *family.fields_keyed_when_set)
    fields = {name: getattr(config, name) for name in sorted(names) if changes_trained_weights(name)
              and (name not in keyed_when_set or differs_from_default(config, name))}
    if config.model_type == "lora" and config.lora_type == "lycoris":
        fields["lycoris_config"] = load_lycoris_spec(config.lycoris_config)
    if config.eval_dataset_fraction:  # held-out images are not trained on (cache.batches); unset adds nothing
        fields["eval_dataset_fraction"] = config.eval_dataset_fraction
    if config.init_weights:  # by content; unset adds nothing, so keys of runs without it stay the same
        fields["init_weights"] = init_weights_digest(config, family.denoiser)
    return fields


def base_model_fingerprint(config: TrainingConfig, family: ModelFamily) -> str:
    """Fingerprint of what training reads from the base model: the denoiser and the noise schedule."""
    path = config.pretrained_model_name_or_path
    parts = [model_fingerprint(path, component) for component in (family.denoiser, "scheduler")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
