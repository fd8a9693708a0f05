"""Which datasets the mask stage reads, and the run config that points at the masks it wrote."""

from __future__ import annotations

from dreamcore.config import DatasetSpec, RunConfig
from dreamcore.config.datasets import bucket_fields_of, location_fields
from dreamcore.config.options.generation import MaskGenerationOptions
from dreamcore.storage import StageResult


def masked_dataset(config: RunConfig, options: MaskGenerationOptions) -> DatasetSpec:
    """The image dataset that mask_generation.dataset names (ValueError naming the key otherwise)."""
    for spec in config.datasets:
        if spec.id == options.dataset:
            if spec.dataset_type != "image":
                raise ValueError(
                    f"mask_generation.dataset {options.dataset!r} is a {spec.dataset_type} dataset; "
                    "name the image dataset whose images need masks"
                )
            return spec
    images = [d.id for d in config.datasets if d.dataset_type == "image"]
    raise ValueError(
        f"mask_generation.dataset {options.dataset!r} is not in the dataset list (image datasets: {images})"
    )


def user_mask_pairs(config: RunConfig) -> list[tuple[DatasetSpec, DatasetSpec]]:
    """(image dataset, its mask dataset) for every user-provided mask dataset (not the generated one)."""
    options = config.training.mask_generation
    generated = options.conditioning_dataset_id if options else None
    pairs = []
    for spec in config.datasets:
        masks = config.mask_dataset(spec) if spec.dataset_type == "image" else None
        if masks is None or (options is not None and spec.id == options.dataset):
            continue
        if masks.id != generated and masks.conditioning_type == "mask":
            pairs.append((spec, masks))
    return pairs


def mask_dataset_spec(
    config: RunConfig, image: DatasetSpec, options: MaskGenerationOptions, data_uri: str
) -> DatasetSpec:
    """The conditioning dataset over generated masks: the declared one with its folder replaced,
    or a new one sharing the image dataset's resolution and crop settings."""
    location = location_fields(data_uri)
    declared = {d.id: d for d in config.datasets}.get(options.conditioning_dataset_id)
    if declared is not None:
        if declared.dataset_type != "conditioning":
            raise ValueError(
                f"mask_generation.conditioning_dataset {declared.id!r} is a {declared.dataset_type} dataset; "
                "it must be a conditioning dataset (or not declared at all)"
            )
        values = declared.model_dump() | location | {"conditioning_type": "mask"}
    else:
        values = (
            _fields_from_image(image)
            | location
            | {
                "id": options.conditioning_dataset_id,
                "dataset_type": "conditioning",
                "conditioning_type": "mask",
            }
        )
    return DatasetSpec.model_validate(values)


def _fields_from_image(image: DatasetSpec) -> dict:
    """What a generated mask dataset copies from its image dataset, so masks bucket and crop alike."""
    # A mask has its image's size, so the minimum_image_size filter keeps or drops both together.
    return bucket_fields_of(image) | {"minimum_image_size": image.minimum_image_size}


def with_generated_masks(config: RunConfig, result: StageResult) -> RunConfig:
    """A new RunConfig whose mask dataset reads the generated masks and is paired with its images."""
    options = config.training.mask_generation
    if options is None or result.details.get("mode") != "generate":
        return config
    image = masked_dataset(config, options)
    if image.conditioning_data not in (None, options.conditioning_dataset_id):
        raise ValueError(
            f"dataset {image.id!r} has conditioning_data {image.conditioning_data!r}, but mask_generation "
            f"writes {options.conditioning_dataset_id!r}: remove conditioning_data or set "
            "mask_generation.conditioning_dataset to the same id"
        )
    masks = mask_dataset_spec(config, image, options, result.details["data_uri"])
    datasets = []
    for spec in config.datasets:
        if spec.id == image.id:
            spec = DatasetSpec.model_validate(spec.model_dump() | {"conditioning_data": masks.id})
        if spec.id != masks.id:
            datasets.append(spec)
        if spec.id == image.id:
            datasets.append(masks)
    return RunConfig(training=config.training, datasets=datasets)
