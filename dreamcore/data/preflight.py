"""What `dreamcore run` would stop on at start-up, checked without creating anything: `dreamcore config check`,
`dreamcore run` and the dreambooth flow all ask here first, so a config that passes the check does not fail on
these at run time."""

from __future__ import annotations

from pathlib import Path

from dreamcore.config import ConfigProblem, RunConfig
from dreamcore.data.sources import dataset_fs
from dreamcore.models.files import local_model_folder
from dreamcore.storage import ArtifactStore
from dreamcore.storage.faults import StorageFault


def preflight_problems(config: RunConfig, file: str) -> list[ConfigProblem]:
    """Missing base model, LyCORIS config and dataset folders, datasets with no usable image, and a storage root
    that cannot be reached with the credentials at hand, each as a problem naming file, dataset and key."""
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
    problems += _dataset_folder_problems(config, file)
    root = training.resolved_storage_root
    if _is_url(root):  # an object store: constructing the store creates nothing, reaching it checks credentials
        try:
            ArtifactStore(root).check_access()
        except StorageFault as fault:
            problems.append(ConfigProblem(file, "storage_root", str(fault)))
    return problems


def generated_dataset_ids(config: RunConfig) -> set[str]:
    """Datasets whose folder the masks / class_images stages make: they do not exist before the run."""
    training, ids = config.training, set()
    if training.mask_generation is not None:
        ids.add(training.mask_generation.conditioning_dataset_id)
    if training.class_images is not None:
        ids.add(training.class_images.dataset)
    return ids


def _dataset_folder_problems(config: RunConfig, file: str) -> list[ConfigProblem]:
    """Local and fsspec datasets whose instance_data_dir is not a folder or holds no usable image (data.usable:
    listing and headers, nothing decoded). Generated datasets are excepted (their stage fills the folder);
    huggingface and aws datasets are checked when ingest opens them."""
    from dreamcore.data.usable import no_usable_image

    generated, problems = generated_dataset_ids(config), []
    for spec in config.image_datasets:
        if spec.type not in ("local", "fsspec") or spec.id in generated or not spec.instance_data_dir:
            continue
        fs, path = dataset_fs(spec)
        if not fs.isdir(path):
            problems.append(ConfigProblem(file, "instance_data_dir", f"folder {spec.instance_data_dir} does not exist "
                                          "or is not a folder; fix the path in the dataset list", spec.id))
        elif unusable := no_usable_image(spec):
            problems.append(ConfigProblem(file, *unusable, spec.id))
    return problems


def _is_url(value: str) -> bool:
    scheme, separator, _ = value.partition("://")
    return bool(separator) and scheme not in ("file", "local")
