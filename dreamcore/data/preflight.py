"""What `dreamcore run` would stop on at start-up, checked without creating anything: `dreamcore config check`,
`dreamcore run` and the dreambooth flow all ask here first, so a config that passes the check does not fail on
these at run time."""

from __future__ import annotations

import posixpath
from pathlib import Path

from dreamcore.config import ConfigProblem, RunConfig
from dreamcore.data.sources import dataset_fs, dataset_location
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
    problems += _unpaired_reference_problems(config, file)
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


def _unpaired_reference_problems(config: RunConfig, file: str) -> list[ConfigProblem]:
    """Edit images with no reference image of the same relative path without extension in a reference dataset they
    pair with, by listing (local and fsspec datasets with existing folders; the VAE cache checks the rest, and the
    references ingest rejects)."""
    from dreamcore.data.images import is_image_name

    def image_names(spec) -> dict[str, str]:  # pairing name (relative path without extension) -> relative path
        fs, root = dataset_fs(spec)
        if not fs.isdir(root):
            return {}
        found = (posixpath.relpath(path, root) for path in fs.find(root))
        return {posixpath.splitext(name)[0]: name for name in found if is_image_name(name)}

    local, problems = ("local", "fsspec"), []
    for spec in config.image_datasets:
        references = [r for r in config.reference_datasets(spec) if r.type in local and r.instance_data_dir]
        if spec.type not in local or not spec.instance_data_dir or not references:
            continue
        edits = image_names(spec)
        for reference in references:
            present = image_names(reference)
            missing = sorted(path for name, path in edits.items() if name not in present)
            if missing:
                problems.append(ConfigProblem(
                    file, "conditioning_data", f"{len(missing)} edit image(s) have no reference image in "
                    f"{reference.id!r} ({dataset_location(reference)}; references pair by relative path without "
                    f"extension): {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}; add them or remove "
                    "those edit images", spec.id))
    return problems


def _is_url(value: str) -> bool:
    scheme, separator, _ = value.partition("://")
    return bool(separator) and scheme not in ("file", "local")
