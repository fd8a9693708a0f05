"""Recurring retraining: what changed in the datasets since the last recorded run.

The pipeline's stage keys already make unchanged work a cache hit; this module adds the record of
the last completed run (`runs/<run_name>/latest.json` in storage) and a per-file diff against it,
so the retrain flow can say exactly what changed, or do nothing and say so. With
continue_from_previous, the new training starts from the last run's exported weights.

That record is the run name's current model: a finished run replaces it only when the regression
guard (retrain_guard, dreamcore.retrain.guard) promotes it; every decision, promoted or rejected, is
kept in `runs/<run_name>/history.json` (dreamcore.retrain.history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dreamcore.config import RunConfig, TrainingConfig
from dreamcore.data.ingest import DatasetSource, ingest_key, read_manifest, scan_dataset
from dreamcore.evaluate.webhooks import WebhookHub, parse_webhook_config
from dreamcore.retrain.guard import Verdict, judge
from dreamcore.retrain.history import append_history, history_entry
from dreamcore.storage import ArtifactStore, StageResult
from dreamcore.train.init_weights import init_weights_kind
from dreamcore.train.plan import TrainDetails

# The export a continued run starts from, by what the run trains (see dreamcore.train.export).
_CONTINUE_EXPORTS = {"lora": "diffusers_lora", "lycoris": "lycoris", "full": "pipeline"}


@dataclass
class DatasetChanges:
    """Per-file differences of one dataset against the last recorded run."""

    dataset_id: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    other_inputs_changed: bool = False  # captions or ingest settings, with the same images

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.other_inputs_changed)


@dataclass
class ChangeReport:
    """What changed since the last recorded run, dataset by dataset."""

    previous_run: dict[str, Any] | None
    datasets: list[DatasetChanges]

    @property
    def any(self) -> bool:
        return self.previous_run is None or any(d.any for d in self.datasets)

    def summary(self) -> str:
        """One line per dataset, for logs and artifacts."""
        if self.previous_run is None:
            return "no previous run recorded: everything runs"
        lines = [
            f"{d.dataset_id}: +{len(d.added)} added, ~{len(d.changed)} changed, -{len(d.removed)} removed"
            + (", captions or settings changed" if d.other_inputs_changed else "")
            for d in self.datasets
            if d.any
        ]
        return "\n".join(lines) or "no change since the last run: nothing to do"


def run_record_path(run_name: str) -> str:
    return f"runs/{run_name}/latest.json"


def read_last_run(store: ArtifactStore, run_name: str) -> dict[str, Any] | None:
    """The record of the last completed run under this name, or None."""
    path = run_record_path(run_name)
    store.invalidate()
    return store.read_json(path) if store.exists(path) else None


def record_run(store: ArtifactStore, run_name: str, results: dict[str, Any]) -> str:
    """Remember a completed run's stage results (written atomically; replaces the previous record)."""
    return store.write_json(run_record_path(run_name), results)


def promote_or_reject(config: RunConfig, store: ArtifactStore, run_name: str, results: dict[str, Any],
                      run_id: str | None = None) -> tuple[Verdict, list[dict[str, Any]]]:
    """Judge a finished run against the current model; a promoted run becomes the current model.

    Returns the verdict and the run name's whole history, this decision last.
    """
    verdict = judge(config.training.retrain_guard, read_last_run(store, run_name), results)
    if verdict.promoted:
        record_run(store, run_name, results)
    history = append_history(store, run_name, history_entry(results, verdict, run_id))
    return verdict, history


def announce(config: RunConfig, run_name: str, verdict: Verdict) -> int:
    """Tell the configured webhooks (webhook_config) what became of the run; how many took it."""
    hub = WebhookHub(parse_webhook_config(config.training.webhook_config))
    if not hub.active:
        return 0
    decision = "promoted" if verdict.promoted else "rejected"
    return hub.send(f"retrain {run_name!r}: new run {decision}: {verdict.reason}", run_name=run_name,
                    decision=decision, comparisons=[c.as_dict() for c in verdict.comparisons])


def detect_changes(config: RunConfig, store: ArtifactStore, run_name: str) -> ChangeReport:
    """Compare every image dataset's files with the manifests of the last recorded run."""
    previous = read_last_run(store, run_name)
    if previous is None:
        return ChangeReport(None, [])
    previous_ingest = previous.get("ingest", {})
    report = []
    for spec in config.image_datasets:
        source = scan_dataset(spec)
        earlier = previous_ingest.get(spec.id)
        report.append(_dataset_changes(store, source, StageResult.model_validate(earlier) if earlier else None))
    return ChangeReport(previous, report)


def _dataset_changes(store: ArtifactStore, source: DatasetSource, earlier: StageResult | None) -> DatasetChanges:
    changes = DatasetChanges(source.spec.id)
    now = {f.path: f.digest for f in source.images}
    if earlier is None:
        changes.added = sorted(now)
        return changes
    before = {row["path"]: row["digest"] for row in read_manifest(store, earlier) if row["status"] != "skipped"}
    changes.added = sorted(set(now) - set(before))
    changes.removed = sorted(set(before) - set(now))
    changes.changed = sorted(p for p in set(now) & set(before) if now[p] != before[p])
    changes.other_inputs_changed = not (changes.added or changes.removed or changes.changed) and (
        ingest_key(source) != earlier.key
    )
    return changes


def previous_weights(previous_run: dict[str, Any] | None, training: TrainingConfig) -> str | None:
    """The URI of the last run's exported weights to continue `training` from, or None (no trained run)."""
    train = (previous_run or {}).get("train")
    if not train:
        return None
    details = TrainDetails.model_validate(train.get("details") or {})
    kind = init_weights_kind(training)
    if details.adapter not in (None, kind):
        raise ValueError(
            f"continue_from_previous: the last run trained a {details.adapter} adapter but this config trains "
            f"{kind} (model_type / lora_type changed); run once without continue_from_previous to start afresh"
        )
    export = details.exports.get(_CONTINUE_EXPORTS[kind])
    if export is None:
        raise ValueError(f"continue_from_previous: the last run's train result lists no {_CONTINUE_EXPORTS[kind]} "
                         f"export (exports: {sorted(details.exports)})")
    return export


def continued(config: RunConfig, previous_run: dict[str, Any] | None) -> RunConfig:
    """`config` whose training starts from the last run's weights (unchanged when no run was recorded)."""
    weights = previous_weights(previous_run, config.training)
    if weights is None:
        return config
    return config.model_copy(update={"training": config.training.model_copy(update={"init_weights": weights})})


def continue_from_last_run(config: RunConfig, run_name: str) -> RunConfig:
    """`config` starting from the weights of the last recorded `run_name` run, if there is one."""
    return continued(config, read_last_run(ArtifactStore(config.training.resolved_storage_root), run_name))
