"""What a run checks before it writes anything: the dataset folders it reads exist and the storage
root answers with the credentials at hand. A failure is one RunFault line; nothing is created."""

from __future__ import annotations

from fsspec.core import url_to_fs

from dreamcore.config import RunConfig
from dreamcore.storage import ArtifactStore
from dreamcore.storage.faults import RunFault


def generated_dataset_ids(config: RunConfig) -> set[str]:
    """Datasets a stage of this run writes (masks, class images): their folders may not exist yet."""
    training, ids = config.training, set()
    if training.mask_generation is not None:
        ids.add(training.mask_generation.conditioning_dataset_id)
    if training.class_images is not None:
        ids.add(training.class_images.dataset)
    return ids


def missing_dataset_folders(config: RunConfig) -> list[str]:
    """One line per dataset whose instance_data_dir is not a folder (generated datasets excepted)."""
    generated, missing = generated_dataset_ids(config), []
    for spec in config.image_datasets:
        if spec.id in generated or not spec.instance_data_dir:
            continue
        fs, path = url_to_fs(spec.instance_data_dir)
        if not fs.isdir(path):
            missing.append(f"dataset {spec.id!r}: instance_data_dir {spec.instance_data_dir} does not exist or is "
                           "not a folder; fix the path in the dataset list")
    return missing


def preflight(config: RunConfig) -> None:
    """RunFault naming the first problem that stops this run before it starts; checks create nothing."""
    missing = missing_dataset_folders(config)
    if missing:
        raise RunFault("; ".join(missing))
    root = config.training.resolved_storage_root
    if "://" in root and not root.startswith("file://"):
        ArtifactStore(root).check_access()  # an object store: nothing is created by constructing it
