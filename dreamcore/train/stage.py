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

from dreamcore.config import RunConfig
from dreamcore.storage import ArtifactStore, StageResult
from dreamcore.storage.digests import content_digest
from dreamcore.storage.leases import HeldLease, stage_lease
from dreamcore.storage.stages import SUCCESS_MARKER, commit_held, committed_by, committed_result, stage_dir
from dreamcore.train.base import resolve_family
from dreamcore.train.export import export_ema_weights, export_weights
from dreamcore.train.plan import (
    TRAIN_STAGE,
    TRAIN_VERSION,
    TrainDetails,
    TrainKeying,
    TrainPlan,
    plan_training,
    training_fields,
)
from dreamcore.train.report import model_card, training_report

if TYPE_CHECKING:
    from dreamcore.cache.batch import BatchSource
    from dreamcore.config import TrainingConfig
    from dreamcore.train.trainer import TrainOutcome

logger = logging.getLogger(__name__)

__all__ = ["TRAIN_STAGE", "TRAIN_VERSION", "TrainDetails", "find_train_result", "train_key", "train_stage",
           "training_fields"]


def train_key(config: TrainingConfig, upstream_digests: dict[str, str]) -> str:
    """The train stage key for this config and these upstream cache digests (a plan's key, without the plan)."""
    return plan_training(config, upstream_digests).key


def train_stage(
    plan: TrainPlan,
    store: ArtifactStore,
    batches: BatchSource,
    *,
    accelerator=None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    on_trained: Callable[[TrainOutcome], None] | None = None,
    show_progress: bool = True,
    make_monitor: Callable[[str], Any] | None = None,
    reads: Sequence[str] = (),
) -> StageResult:
    """Train the plan (or resume, or skip when committed) and export; returns the committed StageResult.

    `on_step(entry)` runs on the main process after every optimiser step (step, losses, lr);
    `on_trained(outcome)` on every process once training ends, before the export;
    `make_monitor(stage_folder)` builds the in-training validation monitor (main process only);
    `reads` are the URIs the training reads (caches, init_weights), kept by gc while it runs or may resume.
    The main process checks its lease before every checkpoint, the export and the commit (fencing).
    """
    key = plan.key
    done = committed_result(store, TRAIN_STAGE, key)
    if done is not None:
        return done
    from dreamcore.train.trainer import make_accelerator

    training = plan.training
    accelerator = accelerator or make_accelerator(training)
    folder = stage_dir(TRAIN_STAGE, key)

    def train_now(held: HeldLease | None) -> StageResult:
        from dreamcore.train.trainer import Trainer

        monitor = make_monitor(folder) if make_monitor is not None and accelerator.is_main_process else None
        trainer = Trainer(training, store, folder, batches, accelerator, keep_reference=plan.keep_reference,
                          family=plan.model_family(), on_step=on_step, show_progress=show_progress,
                          monitor=monitor, fence=held.check if held is not None else None).setup()
        if accelerator.is_main_process:
            from dreamcore.train.tracking import open_tracking

            trainer.tracking = open_tracking(training, key, plan.fields)
        outcome = trainer.train()
        if on_trained is not None:
            on_trained(outcome)
        if accelerator.is_main_process:
            held.check()  # before the exports: a holder that lost its lease writes nothing more
            commit_held(store, _finish(plan, store, folder, outcome, _sampling(batches)), held)
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


def _sampling(batches: BatchSource) -> dict | None:
    """Per dataset: batches per pass, short batches, buckets padded by allow_dataset_oversubscription."""
    report = getattr(batches, "report", None)
    return report() if report is not None else None


def _finish(plan: TrainPlan, store: ArtifactStore, folder: str, outcome: TrainOutcome,
            sampling: dict | None = None) -> StageResult:
    """Export raw (and EMA) weights, write the model card and the loss report; the StageResult."""
    config, key = plan.training, plan.key

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
        details=TrainDetails(adapter=outcome.adapter.kind, family=outcome.base.family.name,
                             prediction_type=outcome.base.prediction_type, final_loss=report["final_loss"],
                             exports={name: store.uri(path) for name, path in exports.items()},
                             ema_exports={name: store.uri(path) for name, path in ema_exports.items()},
                             upstream=plan.upstream).model_dump(),
    )


def _exports_digest(store: ArtifactStore, folder: str, paths: list[str]) -> str:
    """sha256 over every exported file's name (relative to the stage folder) and content digest
    (storage.digests: tensors and canonical metadata, so equal weights give equal digests in any process)."""
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
    keying = TrainKeying.of(config.training, resolve_family(config.training))  # one family and fingerprint for all
    found = []
    for path in store.list(TRAIN_STAGE):
        key = path.rsplit("/", 1)[-1]
        result = committed_result(store, TRAIN_STAGE, key)
        if result is not None and keying.key(TrainDetails.of(result).upstream) == key:
            found.append(result)
    if not found:
        raise RuntimeError(f"no committed train stage for this config under {store.uri()}; train first "
                           "(dreamcore run CONFIG)")
    return max(found, key=lambda r: _marker_time(store, r))


def _marker_time(store: ArtifactStore, result: StageResult) -> float:
    info = store.fs.info(store.path(f"{result.stage}/{result.key}/{SUCCESS_MARKER}"))
    stamp = info.get("mtime") or info.get("LastModified") or info.get("created") or 0
    return stamp.timestamp() if hasattr(stamp, "timestamp") else float(stamp)
