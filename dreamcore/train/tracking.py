"""Experiment tracking for one training run: accelerate's tracker classes (tensorboard, wandb) and an mlflow
tracker on an explicit store, fed by the trainer (loss, lr after every step) and by the in-training
monitor's results (eval loss, CLIP score, validation images).

Built on the main process only. wandb runs offline unless WANDB_MODE asks otherwise; mlflow writes to
mlflow_tracking_uri, MLFLOW_TRACKING_URI, or sqlite:///<logging_dir>/mlflow.db, with its artifacts
(validation images) beside that database. Nothing here is in the train stage key.
"""

from __future__ import annotations

import logging
import os
import posixpath
import time
from pathlib import Path
from typing import Any

from accelerate.tracking import GeneralTracker, TensorBoardTracker, WandBTracker

from dreamcore.config import TrainingConfig
from dreamcore.config.options.tracking import selected_trackers

logger = logging.getLogger(__name__)

_STEP_METRICS = {"loss": "train/loss", "lr": "train/lr", "subject_loss": "train/subject_loss",
                 "regularisation_loss": "train/regularisation_loss"}


class MlflowStoreTracker(GeneralTracker):
    """An accelerate tracker on one mlflow store through MlflowClient (mlflow's module-level active run and
    tracking URI, which accelerate's MLflowTracker uses, would be process-wide state)."""

    name = "mlflow"
    requires_logging_directory = False

    def __init__(self, experiment: str, run_name: str, tracking_uri: str, artifact_location: str) -> None:
        super().__init__()
        self.experiment, self.run_name = experiment, run_name
        self.tracking_uri, self.artifact_location = tracking_uri, artifact_location
        self.client = self.run_id = None

    def start(self) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(self.tracking_uri)
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(
            self.experiment, artifact_location=self.artifact_location)
        self.run_id = self.client.create_run(experiment_id, run_name=self.run_name).info.run_id

    @property
    def tracker(self):
        return self.client

    def store_init_configuration(self, values: dict) -> None:
        from mlflow.entities import Param

        params = [Param(k, str(v)[:6000]) for k, v in values.items()]
        for start in range(0, len(params), 100):  # mlflow's batch limit
            self.client.log_batch(self.run_id, params=params[start:start + 100])

    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step or 0) for k, v in values.items() if isinstance(v, (int, float))]
        self.client.log_batch(self.run_id, metrics=metrics)

    def log_images(self, values: dict, step: int | None = None, **kwargs) -> None:
        for key, images in values.items():
            for image in images:
                self.client.log_image(self.run_id, image, key=key, step=step or 0)

    def finish(self) -> None:
        self.client.set_terminated(self.run_id)


class Tracking:
    """The started trackers of one training run."""

    def __init__(self, trackers: list[GeneralTracker]) -> None:
        self.trackers = trackers

    def log_step(self, entry: dict[str, Any]) -> None:
        """One optimiser step's losses and learning rate (an entry of the trainer's history)."""
        values = {name: entry[key] for key, name in _STEP_METRICS.items() if entry.get(key) is not None}
        for tracker in self.trackers:
            tracker.log(values, step=entry["step"])

    def log_evaluation(self, evaluation) -> None:
        """A monitor result (dreamcore.evaluate.evaluation.Evaluation): eval loss, CLIP scores, validation images."""
        step = evaluation.step or 0
        values = {}
        if evaluation.eval_loss is not None:
            values["eval/loss"] = evaluation.eval_loss.mean
        if evaluation.clip_scores:
            values["eval/clip_score"] = sum(evaluation.clip_scores) / len(evaluation.clip_scores)
        for tracker in self.trackers:
            if values:
                tracker.log(values, step=step)
            if evaluation.images:
                _log_images(tracker, {f"validation/{_image_name(i)}": [i.image] for i in evaluation.images}, step)

    def finish(self) -> None:
        for tracker in self.trackers:
            tracker.finish()


def open_tracking(config: TrainingConfig, default_run_name: str, hyperparameters: dict[str, Any]) -> Tracking | None:
    """Start the trackers that report_to names (None for none), with the run's hyperparameters."""
    names = selected_trackers(config.report_to)
    if not names:
        return None
    folder = tracking_folder(config)
    run_name = config.tracker_run_name or default_run_name
    trackers = [_tracker(name, config, folder, run_name) for name in names]
    values = {k: v for k, v in hyperparameters.items() if isinstance(v, (bool, int, float, str))}
    for tracker in trackers:
        tracker.start()
        tracker.store_init_configuration(values)
    logger.info("tracking %s run %r under %s", ", ".join(names), run_name, folder)
    return Tracking(trackers)


def tracking_folder(config: TrainingConfig) -> Path:
    """The local folder of tracker files: logging_dir, inside output_dir when relative and output_dir is local."""
    folder = Path(config.logging_dir).expanduser()
    if not folder.is_absolute() and "://" not in config.output_dir:
        folder = Path(config.output_dir).expanduser() / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()


def _tracker(name: str, config: TrainingConfig, folder: Path, run_name: str) -> GeneralTracker:
    project = config.tracker_project_name
    if name == "tensorboard":
        return TensorBoardTracker(posixpath.join(project, run_name), str(folder))
    if name == "wandb":
        return WandBTracker(project, name=run_name, dir=str(folder), mode=os.environ.get("WANDB_MODE", "offline"))
    uri = config.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{folder / 'mlflow.db'}"
    return MlflowStoreTracker(project, run_name, uri, (folder / "mlflow-artifacts").as_uri())


def _log_images(tracker: GeneralTracker, images: dict[str, list], step: int) -> None:
    if tracker.name == "tensorboard":
        import numpy as np

        arrays = {k: np.stack([np.asarray(i.convert("RGB")) for i in v]) for k, v in images.items()}
        tracker.log_images(arrays, step=step, dataformats="NHWC")
    else:
        tracker.log_images(images, step=step)


def _image_name(image) -> str:
    return posixpath.splitext(image.file_name)[0]
