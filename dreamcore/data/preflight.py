"""What `dreamcore run` would stop on at start-up, checked without creating anything: `dreamcore config check`
and `dreamcore run` both ask here first, so a config that passes the check does not fail on these at run time."""

from __future__ import annotations

from pathlib import Path

from dreamcore.config import ConfigProblem, RunConfig
from dreamcore.models.files import local_model_folder


def preflight_problems(config: RunConfig, file: str) -> list[ConfigProblem]:
    """Missing base model, LyCORIS config and dataset folders, each as a problem naming file, dataset and key."""
    training = config.training
    problems = []
    try:
        local_model_folder(training.pretrained_model_name_or_path)
    except (FileNotFoundError, ValueError) as error:
        problems.append(ConfigProblem(file, "pretrained_model_name_or_path", str(error)))
    lycoris = training.lycoris_config
    if training.model_type == "lora" and training.lora_type == "lycoris" and lycoris and not _is_url(lycoris):
        if not Path(lycoris).expanduser().is_file():
            problems.append(ConfigProblem(file, "lycoris_config", f"file {lycoris} does not exist"))
    generated = _generated_dataset_ids(config)
    for spec in config.image_datasets:
        folder = spec.instance_data_dir
        if spec.type != "local" or spec.id in generated or Path(folder).expanduser().is_dir():
            continue
        problems.append(ConfigProblem(file, "instance_data_dir", f"folder {folder} does not exist", spec.id))
    return problems


def _generated_dataset_ids(config: RunConfig) -> set[str]:
    """Datasets whose folder the masks / class_images stages make: they do not exist before the run."""
    training, ids = config.training, set()
    if training.mask_generation is not None:
        ids.add(training.mask_generation.conditioning_dataset_id)
    if training.class_images is not None:
        ids.add(training.class_images.dataset)
    return ids


def _is_url(value: str) -> bool:
    scheme, separator, _ = value.partition("://")
    return bool(separator) and scheme not in ("file", "local")
