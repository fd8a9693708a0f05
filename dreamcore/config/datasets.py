"""Dataset specs: one entry of SimpleTuner's multidatabackend.json, typed, plus list-level checks."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from dreamcore.config.fields import differs_from_default
from dreamcore.config.sources import (
    AWS_FIELDS,
    HUGGINGFACE_FIELDS,
    AwsFields,
    HuggingfaceFields,
    check_aws_fields,
    check_huggingface_fields,
    merge_huggingface_block,
)

DatasetType = Literal["image", "conditioning", "text_embeds", "eval"]
IMAGE_LIKE: tuple[str, ...] = ("image", "conditioning", "eval")
# Conditioning datasets whose images an edit model sees beside its target (SimpleTuner's): strict ones are resized
# and cropped exactly as their edit image, loose ones are bucketed on their own.
REFERENCE_TYPES: tuple[str, ...] = ("reference_strict", "reference_loose")

# The one list of fields that decide an image's bucket and crop. data.buckets.BucketSettings reads
# exactly these; generated mask and class-image datasets copy them from their subject, and datasets
# sharing a cache_dir_vae must agree on them. minimum_image_size is not one: it excludes images at
# ingest and sizes no bucket (generated mask datasets copy it too, class-image datasets do not).
BUCKET_FIELDS: tuple[str, ...] = (
    "resolution",
    "resolution_type",
    "crop",
    "crop_aspect",
    "crop_style",
    "crop_aspect_buckets",
    "maximum_image_size",
    "target_downsample_size",
)


class CaptionMetadataOptions(BaseModel):
    """SimpleTuner's "parquet" block: a Parquet or JSONL table of captions keyed by file name."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(..., description="The .parquet or .jsonl file (relative paths: inside instance_data_dir).")
    filename_column: str = Field("id", description="Column holding the image's file name or relative path.")
    caption_column: str = Field("caption", description="Column holding the caption (a string or a list of strings).")
    fallback_caption_column: str | None = Field(None, description="Column used where caption_column is empty.")
    identifier_includes_extension: bool = Field(
        False, description="True when filename_column values keep the image's extension (photo.jpg, not photo)."
    )


class AspectBucketWeight(BaseModel):
    """One weighted entry of crop_aspect_buckets: {"aspect": 1.5, "weight": 0.25}."""

    model_config = ConfigDict(extra="forbid")

    aspect: float = Field(..., gt=0, description="Width / height of the crop.")
    weight: float = Field(..., gt=0, description="Relative chance of this aspect (crop_aspect random).")


class DatasetSpec(HuggingfaceFields, AwsFields):
    """One dataset. Field names are SimpleTuner's; both spellings of regularisation are accepted.

    The huggingface and aws fields (SimpleTuner's dataset_name, image_column, aws_bucket_name, ...) come
    from dreamcore.config.sources.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)

    id: str = Field(..., min_length=1, description="Unique name of the dataset.")
    type: Literal["local", "fsspec", "huggingface", "aws"] = Field(
        "local",
        description="local: a folder on this machine; fsspec: instance_data_dir is a URL (s3://...); "
        "huggingface: a Hugging Face dataset present on this machine (dataset_name); aws: an S3 bucket "
        "(aws_bucket_name, aws_data_prefix, aws_endpoint_url, credentials).",
    )
    dataset_type: DatasetType = Field("image", description="image, conditioning (masks), text_embeds or eval.")
    instance_data_dir: str | None = Field(None, description="Folder (or fsspec URL) holding the images.")
    caption_strategy: Literal["instanceprompt", "textfile", "filename", "parquet", "huggingface"] = Field(
        "filename",
        description="Where captions come from: instance_prompt, .txt files beside images, file names, a "
        "Parquet/JSONL metadata table (the parquet block), or the caption column of a huggingface dataset "
        "(its default there).",
    )
    parquet: CaptionMetadataOptions | None = Field(
        None, description="caption_strategy parquet: the metadata table (.parquet or .jsonl) and its columns."
    )
    instance_prompt: str | None = Field(None, description="Caption for every image with caption_strategy instanceprompt.")
    cache_dir_vae: str | None = Field(None, description="Where this dataset's VAE-latent cache lives.")
    cache_dir: str | None = Field(None, description="text_embeds datasets: where text embeddings are cached.")
    default: bool = Field(False, description="text_embeds datasets: the one used for every caption.")
    text_embeds: str | None = Field(
        None, description="image/eval datasets: id of the text_embeds dataset whose cache holds this dataset's "
        "caption embeddings (as in SimpleTuner); unset: the default text_embeds dataset.",
    )
    repeats: int = Field(0, ge=0, description="Extra passes over this dataset per epoch.")
    probability: float = Field(1.0, ge=0.0, description="Relative chance of sampling this dataset.")
    caption_dropout_probability: float | None = Field(
        None, ge=0.0, le=1.0, description="This dataset's chance a sample trains on the empty caption "
        "(unset: the training config's caption_dropout_probability).",
    )
    crop: bool = Field(False, description="Crop images to the training aspect instead of bucketing whole images.")
    crop_aspect: Literal["square", "preserve", "random", "closest"] = Field("square", description="Crop shape.")
    crop_aspect_buckets: list[float | AspectBucketWeight] | None = Field(
        None,
        description="crop_aspect random/closest: the allowed aspects (width/height), plain numbers or "
        '{"aspect": a, "weight": w} entries.',
    )
    crop_style: Literal["center", "centre", "random", "corner", "face"] = Field(
        "random", description="Where the crop is taken: center, random (seeded per image) or corner (bottom-right)."
    )
    resolution: float = Field(1024, gt=0, description="Training resolution (meaning depends on resolution_type).")
    resolution_type: Literal["pixel", "area", "pixel_area"] = Field(
        "pixel_area",
        description="pixel_area (SimpleTuner's default): edge length squared as area; pixel: shorter edge; area: megapixels.",
    )
    minimum_image_size: float | None = Field(
        None, ge=0, description="Images below this (in resolution_type units) are excluded at ingest."
    )
    maximum_image_size: float | None = Field(None, gt=0, description="Images above this are downsampled first.")
    target_downsample_size: float | None = Field(None, gt=0, description="Size that oversized images shrink to.")
    is_regularisation_data: bool = Field(
        False,
        validation_alias=AliasChoices("is_regularisation_data", "is_regularization_data"),
        description="Prior-preservation data: the base model's own prediction is the target.",
    )
    conditioning_data: str | list[str] | None = Field(
        None, description="id (or ids) of the conditioning datasets paired with this one: at most one mask dataset, "
        "and reference datasets for an edit model (pairs by relative path without extension).",
    )
    conditioning_type: Literal["mask", "reference_strict", "reference_loose"] | None = Field(
        None, description="Kind of conditioning: mask (masked loss), reference_strict (an edit model's reference "
        "images, resized and cropped exactly as their edit image) or reference_loose (references bucketed on their "
        "own).",
    )
    allow_missing_masks: bool = Field(
        False,
        description="Mask datasets: an image without a mask trains on its whole area (an all-white mask) "
        "instead of stopping the run.",
    )
    metadata_backend: Literal["discovery", "parquet", "json", "huggingface"] = Field(
        "discovery",
        description="How image metadata is found: discovery scans the files; huggingface (the default and only "
        "choice of a huggingface dataset) reads the dataset's rows.",
    )

    @model_validator(mode="before")
    @classmethod
    def _huggingface_defaults(cls, data):
        """A huggingface dataset: its block's settings and SimpleTuner's defaults for it, before field checks."""
        return merge_huggingface_block(_reference_defaults(data))

    @field_validator("id")
    @classmethod
    def _check_id_is_a_name(cls, value: str) -> str:
        # Ids name folders and files (generated datasets, cache and report paths): a path would escape them.
        if any(sep in value for sep in ("/", "\\", ":", "\0")) or ".." in value or value.strip() in ("", "."):
            raise ValueError(f"dataset id {value!r} is a path, not a name; use letters, digits, '-', '_' or '.' "
                             "(no '/', '\\', ':' or '..')")
        return value

    @model_validator(mode="after")
    def _check_fields_for_type(self) -> DatasetSpec:
        if self.type == "huggingface":
            check_huggingface_fields(self)
        elif self.caption_strategy == "huggingface" or self.metadata_backend == "huggingface":
            raise ValueError("caption_strategy / metadata_backend 'huggingface' need \"type\": \"huggingface\"")
        for name in HUGGINGFACE_FIELDS if self.type != "huggingface" else ():
            if self._is_set(name):
                raise ValueError(f"{name} is a key of huggingface datasets; this dataset's type is {self.type!r}")
        if self.type == "aws":
            check_aws_fields(self)
        for name in AWS_FIELDS if self.type != "aws" else ():
            if self._is_set(name):
                raise ValueError(f"{name} is a key of aws datasets; this dataset's type is {self.type!r}")
        if self.dataset_type in IMAGE_LIKE and not self.instance_data_dir and self.type not in ("huggingface", "aws"):
            raise ValueError(f"dataset_type {self.dataset_type!r} needs instance_data_dir (the image folder)")
        if self.caption_strategy == "instanceprompt" and self.dataset_type in ("image", "eval"):
            if not self.instance_prompt:
                raise ValueError("caption_strategy 'instanceprompt' needs instance_prompt")
        if self.dataset_type == "conditioning" and self.conditioning_type is None:
            raise ValueError("a conditioning dataset needs conditioning_type (allowed: 'mask')")
        if self.crop_style == "face":
            raise ValueError("crop_style 'face' is not supported: use center, random or corner")
        if self.crop and self.crop_aspect in ("random", "closest") and not self.crop_aspect_buckets:
            raise ValueError(
                f"crop_aspect {self.crop_aspect!r} needs crop_aspect_buckets, e.g. [0.75, 1.0, 1.5]"
            )
        if self.caption_strategy == "parquet" and self.dataset_type in ("image", "eval") and self.parquet is None:
            raise ValueError(
                'caption_strategy \'parquet\' needs a parquet block: {"path": "captions.parquet", '
                '"filename_column": "id", "caption_column": "caption"}'
            )
        if self.instance_data_dir and self.type in ("local", "aws") and _has_remote_scheme(self.instance_data_dir):
            raise ValueError(
                f"instance_data_dir {self.instance_data_dir!r} is a URL: set type to 'fsspec' for remote data"
                + (" (an aws dataset's instance_data_dir is a prefix inside aws_bucket_name)" if self.type == "aws" else "")
            )
        return self

    def _is_set(self, name: str) -> bool:
        """Given a value other than its default (a dumped spec repeats every default)."""
        return differs_from_default(self, name)

    @property
    def is_image_like(self) -> bool:
        return self.dataset_type in IMAGE_LIKE

    @property
    def conditioning_ids(self) -> list[str]:
        """The ids conditioning_data names (one or several), in order."""
        if self.conditioning_data is None:
            return []
        return [self.conditioning_data] if isinstance(self.conditioning_data, str) else list(self.conditioning_data)

    @property
    def is_reference(self) -> bool:
        """A reference dataset of an edit model (conditioning_type reference_strict or reference_loose)."""
        return self.conditioning_type in REFERENCE_TYPES


def _reference_defaults(data):
    """SimpleTuner's quickstarts write a reference dataset without dataset_type and with "caption_strategy": null:
    a reference dataset is a conditioning dataset, and its captions are its edit image's."""
    if not isinstance(data, dict) or data.get("conditioning_type") not in REFERENCE_TYPES:
        return data
    data = dict(data)
    data.setdefault("dataset_type", "conditioning")
    if data.get("caption_strategy", "") is None:
        data.pop("caption_strategy")
    return data


class DatasetListError(ValueError):
    """A problem that involves several datasets (references, defaults, duplicates)."""

    def __init__(self, dataset_id: str | None, key: str, message: str) -> None:
        super().__init__(message)
        self.dataset_id = dataset_id
        self.key = key


def check_dataset_list(datasets: list[DatasetSpec]) -> list[DatasetListError]:
    """Cross-dataset checks: unique ids, conditioning references, one default text_embeds."""
    problems: list[DatasetListError] = []
    by_id: dict[str, DatasetSpec] = {}
    for spec in datasets:
        if spec.id in by_id:
            problems.append(DatasetListError(spec.id, "id", f"duplicate dataset id {spec.id!r}: ids must be unique"))
        by_id[spec.id] = spec
    conditioning_ids = sorted(d.id for d in datasets if d.dataset_type == "conditioning")
    for spec in datasets:
        for named in spec.conditioning_ids:
            target = by_id.get(named)
            if target is None or target.dataset_type != "conditioning":
                problems.append(
                    DatasetListError(
                        spec.id,
                        "conditioning_data",
                        f"conditioning_data {named!r} does not name a conditioning dataset "
                        f"(conditioning datasets: {conditioning_ids or 'none'})",
                    )
                )
        masks = [i for i in spec.conditioning_ids if i in by_id and by_id[i].conditioning_type == "mask"]
        if len(masks) > 1:
            problems.append(DatasetListError(spec.id, "conditioning_data", f"dataset {spec.id!r} names {len(masks)} "
                                             f"mask datasets ({masks}); pair at most one mask dataset with it"))
    problems.extend(_shared_vae_cache_problems(datasets))
    text_embeds = [d for d in datasets if d.dataset_type == "text_embeds"]
    for spec in datasets:
        target = by_id.get(spec.text_embeds) if spec.text_embeds else None
        if spec.text_embeds and (target is None or target.dataset_type != "text_embeds"):
            problems.append(DatasetListError(
                spec.id, "text_embeds", f"dataset {spec.id!r} names text_embeds dataset {spec.text_embeds!r}, which "
                f"is not a text_embeds dataset of this list (text_embeds datasets: "
                f"{[d.id for d in text_embeds] or 'none'})"))
    defaults = [d.id for d in text_embeds if d.default]
    if len(defaults) > 1:
        problems.append(
            DatasetListError(defaults[1], "default", f"only one text_embeds dataset may be default; found {defaults}")
        )
    if text_embeds and not defaults:
        problems.append(
            DatasetListError(
                text_embeds[0].id,
                "default",
                f"set \"default\": true on one text_embeds dataset (found {[d.id for d in text_embeds]})",
            )
        )
    return problems


def _shared_vae_cache_problems(datasets: list[DatasetSpec]) -> list[DatasetListError]:
    """Two image datasets of different sizes must not share one cache_dir_vae (SimpleTuner's rule)."""
    problems: list[DatasetListError] = []
    first_user: dict[str, DatasetSpec] = {}
    for spec in datasets:
        if spec.dataset_type != "image" or not spec.cache_dir_vae:
            continue
        location = spec.cache_dir_vae.rstrip("/")
        other = first_user.setdefault(location, spec)
        if other is not spec and bucket_fields_of(other) != bucket_fields_of(spec):
            problems.append(
                DatasetListError(
                    spec.id,
                    "cache_dir_vae",
                    f"cache_dir_vae {spec.cache_dir_vae!r} is also used by dataset {other.id!r}, which has other "
                    "size or crop settings; give each differently-sized dataset its own cache_dir_vae",
                )
            )
    return problems


def bucket_fields_of(spec: DatasetSpec) -> dict:
    """The BUCKET_FIELDS of one dataset as plain values (nested entries as dicts, safe to give another spec)."""
    return spec.model_dump(include=set(BUCKET_FIELDS))


def _has_remote_scheme(path: str) -> bool:
    scheme, sep, _ = path.partition("://")
    return bool(sep) and scheme not in ("file", "local")


def location_fields(folder: str) -> dict[str, str]:
    """instance_data_dir and the matching type for a local folder or an fsspec URL."""
    return {"instance_data_dir": folder, "type": "fsspec" if _has_remote_scheme(folder) else "local"}
