"""The train stage: cached batches in, exported weights + model card + loss report out.

Stage key = the training fields of the config that can change the weights (not checkpoint cadence and retention,
validation, previews, webhooks or tracking; the LyCORIS JSON and init_weights by content, not path), the
digests of the upstream caches and the base model's fingerprint. A committed stage returns without
work; an interrupted one resumes from its newest complete checkpoint. With several processes every
process trains; the main process alone exports and commits.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dreamcore.config import RunConfig, TrainingConfig
from dreamcore.config.fields import differs_from_default
from dreamcore.config.options.model import ModelOptions
from dreamcore.config.options.train import TrainOptions, changes_trained_weights
from dreamcore.storage import ArtifactStore, StageResult
from dreamcore.storage.leases import HeldLease, stage_lease
from dreamcore.storage.stages import SUCCESS_MARKER, commit_held, committed_by, committed_result, stage_dir, stage_key

if TYPE_CHECKING:
    from dreamcore.cache.batch import BatchSource
    from dreamcore.train.trainer import TrainOutcome

logger = logging.getLogger(__name__)

TRAIN_STAGE = "train"
TRAIN_VERSION = 1
# Read at cache time (their effect reaches us through the cache digests) or replaced by content.
# model_flavour only names the model, whose fingerprint is in the key.
_NOT_IN_KEY = {"pretrained_model_name_or_path", "model_flavour", "lycoris_config", "text_encoder_1_precision",
               "text_encoder_2_precision", "text_encoder_3_precision", "init_weights"}
# Fields added after runs were keyed: in the key only when set away from their default, so the keys of
# runs that do not use them stay what they were.
_KEYED_WHEN_SET = ("optimizer_config", "lr_end", "loss_type", "huber_schedule", "huber_c",
                   "caption_dropout_probability", "allow_dataset_oversubscription",
                   "num_processes")  # num_processes: a larger effective batch (the family adds its own)


def training_fields(config: TrainingConfig) -> dict[str, Any]:
    """The config fields the trainer reads, as hashed into the stage key.

    Family-only fields (the family's option groups) count only for the family that reads them, so adding them
    left the keys of SD 1.x/2.x and SDXL runs as they were.
    """
    from dreamcore.models import detect_family

    family = detect_family(config.pretrained_model_name_or_path)
    names = ((set(ModelOptions.model_fields) | set(TrainOptions.model_fields)) - _NOT_IN_KEY) | set(family.trained_fields)
    keyed_when_set = (*_KEYED_WHEN_SET, *family.fields_keyed_when_set)
    fields = {name: getattr(config, name) for name in sorted(names) if changes_trained_weights(name)
              and (name not in keyed_when_set or differs_from_default(config, name))}
    if config.model_type == "lora" and config.lora_type == "lycoris":
        from dreamcore.train.adapters import load_lycoris_spec

        fields["lycoris_config"] = load_lycoris_spec(config.lycoris_config)
    if config.eval_dataset_fraction:  # held-out images are not trained on (cache.batches); unset adds nothing
        fields["eval_dataset_fraction"] = config.eval_dataset_fraction
    if config.init_weights:  # by content; unset adds nothing, so keys of runs without it stay the same
        from dreamcore.train.init_weights import init_weights_digest

        fields["init_weights"] = init_weights_digest(config, family.denoiser)
    return fields


def base_model_fingerprint(config: TrainingConfig) -> str:
    """Fingerprint of what training reads from the base model: the denoiser and the noise schedule."""
    from dreamcore.models import detect_family, model_fingerprint

    path = config.pretrained_model_name_or_path
    denoiser = detect_family(path).denoiser
    parts = [model_fingerprint(path, component) for component in (denoiser, "scheduler")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def train_key(config: TrainingConfig, upstream_digests: dict[str, str]) -> str:
    """The train stage key for this config and these upstream cache digests."""
    return stage_key(TRAIN_STAGE, TRAIN_VERSION, training_fields(config), upstream_digests,
                     base_model_fingerprint(config))


def train_stage(
    config: RunConfig | TrainingConfig,
    store: ArtifactStore,
    batches: BatchSource,
    upstream_digests: dict[str, str],
    *,
    accelerator=None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    on_trained: Callable[[TrainOutcome], None] | None = None,
    show_progress: bool = True,
    make_monitor: Callable[[str], Any] | None = None,
    reads: Sequence[str] = (),
) -> StageResult:
    """Train (or resume, or skip when committed) and export; returns the committed StageResult.

    `on_step(entry)` runs on the main process after every optimiser step (step, losses, lr);
    `on_trained(outcome)` on every process once training ends, before the export;
    `make_monitor(stage_folder)` builds the in-training validation monitor (main process only);
    `reads` are the URIs the training reads (caches, init_weights), kept by gc while it runs or may resume.
    The main process checks its lease before every checkpoint, the export and the commit (fencing).
    """
    training = config.training if isinstance(config, RunConfig) else config
    if not training.pretrained_model_name_or_path:
        raise ValueError("pretrained_model_name_or_path is required to train: a model folder or hub id")
    key = train_key(training, upstream_digests)
    done = committed_result(store, TRAIN_STAGE, key)
    if done is not None:
        return done
    from dreamcore.train.trainer import make_accelerator

    accelerator = accelerator or make_accelerator(training)
    folder = stage_dir(TRAIN_STAGE, key)

    def train_now(held: HeldLease | None) -> StageResult:
        from dreamcore.train.trainer import Trainer

        monitor = make_monitor(folder) if make_monitor is not None and accelerator.is_main_process else None
        trainer = Trainer(training, store, folder, batches, accelerator, keep_reference=_needs_reference(config),
                          on_step=on_step, show_progress=show_progress, monitor=monitor,
                          fence=held.check if held is not None else None).setup()
        if accelerator.is_main_process:
            from dreamcore.train.tracking import open_tracking

            trainer.tracking = open_tracking(training, key, training_fields(training))
        outcome = trainer.train()
        if on_trained is not None:
            on_trained(outcome)
        if accelerator.is_main_process:
            held.check()  # before the exports: a holder that lost its lease writes nothing more
            commit_held(store, _finish(training, store, key, folder, outcome, upstream_digests, _sampling(batches)),
                        held)
        accelerator.wait_for_everyone()
        result = committed_result(store, TRAIN_STAGE, key)
        if result is None:
            raise RuntimeError(f"train stage {key}: the main process did not commit its result")
        return result

    if not accelerator.is_main_process:  # the main process holds the lease for all processes
        accelerator.wait_for_everyone()
        return committed_result(store, TRAIN_STAGE, key) or train_now(None)
    with stage_lease(store, TRAIN_STAGE, key, lambda: committed_by(store, TRAIN_STAGE, key), reads=reads) as held:
        accelerator.wait_for_everyone()
        # not held: another run trained this key while this one waited for its lease
        return train_now(held) if held else committed_result(store, TRAIN_STAGE, key)


def _needs_reference(config: RunConfig | TrainingConfig) -> bool:
    """A full fine-tune keeps a frozen base copy only when regularisation data may need its prediction."""
    if isinstance(config, RunConfig):
        return any(spec.is_regularisation_data for spec in config.datasets)
    return True


def _sampling(batches: BatchSource) -> dict | None:
    """Per dataset: batches per pass, short batches, buckets padded by allow_dataset_oversubscription."""
    report = getattr(batches, "report", None)
    return report() if report is not None else None


def _finish(config: TrainingConfig, store: ArtifactStore, key: str, folder: str, outcome: TrainOutcome,
            upstream_digests: dict[str, str], sampling: dict | None = None) -> StageResult:
    """Export raw (and EMA) weights, write the model card and the loss report; the StageResult."""
    from dreamcore.train.export import export_ema_weights, export_weights
    from dreamcore.train.report import model_card, training_report

    exports = export_weights(outcome.adapter, outcome.base, config, store, f"{folder}/export")
    ema_exports = {}
    if outcome.ema is not None:
        with outcome.ema.applied():
            ema_exports = export_ema_weights(outcome.adapter, outcome.base, config, store, f"{folder}/export/ema")
    report = training_report(config, outcome, exports, ema_exports) | {"sampling": sampling}
    report_path = f"{folder}/report.json"
    store.write_json(report_path, report)
    store.write_bytes(f"{folder}/README.md", model_card(config, outcome, exports, ema_exports).encode())
    digest = _exports_digest(store, folder, [*exports.values(), *ema_exports.values()])
    return StageResult(
        stage=TRAIN_STAGE,
        key=key,
        output_uri=store.uri(folder),
        digest=digest,
        counts={"steps": len(outcome.history), "wrapped_modules": outcome.adapter.wrapped_modules,
                "checkpoints": len(outcome.checkpoints)},
        report_uri=store.uri(report_path),
        details={"adapter": outcome.adapter.kind, "family": outcome.base.family.name,
                 "prediction_type": outcome.base.prediction_type, "final_loss": report["final_loss"],
                 "exports": {name: store.uri(path) for name, path in exports.items()},
                 "ema_exports": {name: store.uri(path) for name, path in ema_exports.items()},
                 "upstream": dict(upstream_digests)},
    )


def _exports_digest(store: ArtifactStore, folder: str, paths: list[str]) -> str:
    """sha256 over every exported file's name (relative to the stage folder) and content digest
    (storage.digests: tensors and canonical metadata, so equal weights give equal digests in any process)."""
    from dreamcore.storage.digests import content_digest

    digest = hashlib.sha256()
    for path in sorted(paths):
        files = [path] if not store.fs.isdir(store.path(path)) else _files_under(store, path)
        for file in files:
            name = file[len(folder) + 1:] if file.startswith(f"{folder}/") else file
            digest.update(name.encode() + b"\0" + content_digest(file, store.read_bytes(file)).encode())
    return digest.hexdigest()


def _files_under(store: ArtifactStore, folder: str) -> list[str]:
    prefix = len(store.root_path) + 1
    return sorted(p[prefix:] for p in store.fs.find(store.path(folder)))


def find_train_result(config: RunConfig, store: ArtifactStore) -> StageResult:
    """The committed train stage of this config (the newest, when several data versions were trained)."""
    found = []
    for path in store.list(TRAIN_STAGE):
        key = path.rsplit("/", 1)[-1]
        result = committed_result(store, TRAIN_STAGE, key)
        if result is not None and train_key(config.training, result.details.get("upstream", {})) == key:
            found.append(result)
    if not found:
        raise RuntimeError(f"no committed train stage for this config under {store.uri()}; train first "
                           "(dreamcore run CONFIG)")
    return max(found, key=lambda r: _marker_time(store, r))


def _marker_time(store: ArtifactStore, result: StageResult) -> float:
    info = store.fs.info(store.path(f"{result.stage}/{result.key}/{SUCCESS_MARKER}"))
    stamp = info.get("mtime") or info.get("LastModified") or info.get("created") or 0
    return stamp.timestamp() if hasattr(stamp, "timestamp") else float(stamp)
