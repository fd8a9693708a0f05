"""The regularisation dataset over generated class images, and the run config that points at it."""

from __future__ import annotations

from dreamcore.config import DatasetSpec, RunConfig
from dreamcore.config.datasets import bucket_fields_of, location_fields
from dreamcore.config.options.generation import ClassImageOptions
from dreamcore.storage import StageResult


def regularisation_dataset_spec(config: RunConfig, options: ClassImageOptions, data_uri: str) -> DatasetSpec:
    """The declared dataset `options.dataset` with its folder replaced, or a new one with
    is_regularisation_data true, textfile captions and the subject dataset's bucket settings."""
    location = location_fields(data_uri)
    declared = {d.id: d for d in config.datasets}.get(options.dataset)
    if declared is not None:
        if declared.dataset_type != "image":
            raise ValueError(
                f"class_images.dataset {declared.id!r} is a {declared.dataset_type} dataset; class images "
                "need an image dataset (or leave it out of the dataset list and it is added)"
            )
        values = declared.model_dump() | location
        if declared.caption_strategy == "filename":
            # "class_000012" is no caption: the generated folder carries the prompt in .txt files.
            values["caption_strategy"] = "textfile"
        return DatasetSpec.model_validate(values)
    subjects = [d for d in config.datasets if d.dataset_type == "image" and not d.is_regularisation_data]
    # Class images bucket and crop exactly like the subject. minimum_image_size is not copied: they are
    # generated at the sizes class_images asks for, and a subject's minimum would silently drop them.
    shared = bucket_fields_of(subjects[0]) if subjects else {}
    return DatasetSpec.model_validate(
        shared | location | {"id": options.dataset, "caption_strategy": "textfile", "is_regularisation_data": True}
    )


def with_class_images(config: RunConfig, result: StageResult) -> RunConfig:
    """A new RunConfig whose regularisation dataset reads the generated class images."""
    options = config.training.class_images
    if options is None:
        return config
    spec = regularisation_dataset_spec(config, options, result.details["data_uri"])
    ids = [d.id for d in config.datasets]
    if spec.id in ids:
        datasets = [spec if d.id == spec.id else d for d in config.datasets]
    else:
        datasets = [*config.datasets, spec]
    return RunConfig(training=config.training, datasets=datasets)
