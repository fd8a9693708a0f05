"""Experiment tracking (SimpleTuner's report_to, tracker_project_name, tracker_run_name, logging_dir).

Tracking records what training did; it changes no weight, so none of these fields is in the train
stage key (dreamcore.train.stage reads only the model and train options).
"""

from __future__ import annotations

import importlib.util

from pydantic import BaseModel, Field, field_validator

# Tracker name -> the package it needs (installed by the "tracking" extra: pip install dreamcore[tracking]).
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
# SimpleTuner's other choices, which dreamcore does not log to.
_NOT_SUPPORTED = ("simpletuner", "swanlab", "comet_ml", "custom-tracker")


class TrackingOptions(BaseModel):
    """Where training loss, learning rate, eval loss, CLIP scores and validation images are logged."""

    report_to: str | list[str] = Field(
        "none",
        description="Trackers, comma-separated: tensorboard, wandb (offline unless WANDB_MODE says otherwise), mlflow, "
        "all (the three), or none. SimpleTuner's default is none too.",
    )
    tracker_project_name: str = Field(
        "dreamcore", min_length=1, description="The project (wandb), experiment (mlflow) or top folder (tensorboard)."
    )
    tracker_run_name: str | None = Field(
        None, description="The run's name in the trackers (unset: the train stage key, one run per training)."
    )
    logging_dir: str = Field(
        "logs", description="Local folder of tracker files (tensorboard events, wandb offline runs, the default "
        "mlflow store); relative: inside output_dir (or the working directory when output_dir is a URL)."
    )
    mlflow_tracking_uri: str | None = Field(
        None, description="mlflow store, e.g. sqlite:///mlflow.db (unset: MLFLOW_TRACKING_URI, else "
        "sqlite:///<logging_dir>/mlflow.db)."
    )

    @field_validator("report_to")
    @classmethod
    def _known_installed_trackers(cls, value: str | list[str]) -> str:
        names = selected_trackers(value)
        missing = [TRACKER_PACKAGES[n] for n in names if importlib.util.find_spec(TRACKER_PACKAGES[n]) is None]
        if missing:
            raise ValueError(
                f"report_to {value!r} needs the {', '.join(missing)} package: pip install 'dreamcore[tracking]' "
                f"(or pip install {' '.join(missing)})"
            )
        return ",".join(names) or "none"


def selected_trackers(report_to: str | list[str]) -> list[str]:
    """report_to as tracker names (empty for none); ValueError for a tracker dreamcore does not log to."""
    parts = report_to if isinstance(report_to, list) else report_to.split(",")
    names: list[str] = []
    for part in (p.strip().lower() for p in parts):
        if part in ("", "none"):
            continue
        if part == "all":
            names.extend(TRACKER_PACKAGES)
        elif part in TRACKER_PACKAGES:
            names.append(part)
        elif part in _NOT_SUPPORTED:
            raise ValueError(f"report_to {part!r} is not supported: choose from tensorboard, wandb, mlflow, all, none")
        else:
            raise ValueError(f"unknown report_to {part!r}: choose from tensorboard, wandb, mlflow, all, none")
    return list(dict.fromkeys(names))
