"""Typed configuration: the training config, dataset specs and SimpleTuner-compatible loaders."""

from dreamcore.config.datasets import DatasetSpec, check_dataset_list
from dreamcore.config.loader import (
    ConfigError,
    ConfigProblem,
    LoadedConfig,
    load_config,
    load_run_config,
)
from dreamcore.config.run import RunConfig
from dreamcore.config.training import TrainingConfig

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "DatasetSpec",
    "LoadedConfig",
    "RunConfig",
    "TrainingConfig",
    "check_dataset_list",
    "load_config",
    "load_run_config",
]
