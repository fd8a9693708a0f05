"""Where a dataset's images come from, beyond a folder: SimpleTuner's huggingface and aws dataset keys.

The field names are SimpleTuner's (its data_backend/config/image.py and builders). A huggingface dataset
is read offline only (a save_to_disk folder, Parquet files, a folder of images/Parquet, or the local hub
cache); an aws dataset is an S3 bucket reached through s3fs. The aws credentials are SecretStr: every
JSON dump of a config (run records, `config check`, Prefect parameters) shows them as "**********".
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

REDACTED = "**********"  # how pydantic writes a SecretStr into JSON


class _SharedHuggingfaceKeys(BaseModel):
    """Keys SimpleTuner reads from both the huggingface block and the top level (the block wins)."""

    fallback_caption_column: str | None = Field(None, description="huggingface: used where the caption is empty.")
    streaming: bool | None = Field(None, description="huggingface: refused when true (every image is scanned).")
    num_proc: int | None = Field(None, description="huggingface: ignored (only filter_func uses it).")
    auto_load: bool | None = Field(None, description="huggingface: ignored (load timing only).")


class HuggingfaceOptions(_SharedHuggingfaceKeys):
    """SimpleTuner's "huggingface" block of a huggingface dataset."""

    model_config = ConfigDict(extra="forbid")

    dataset_name: str | None = Field(None, description="As the top-level dataset_name (the top-level key wins).")
    split: str | None = Field(None, description="As the top-level split (the top-level key wins).")
    revision: str | None = Field(None, description="As the top-level revision (the top-level key wins).")
    image_column: str | None = Field(None, description="As the top-level image_column (the top-level key wins).")
    caption_column: str | list[str] | None = Field(
        None, description="Column(s) holding the caption; a list gives alternative captions (this key wins)."
    )
    description_column: str = Field(
        "description",
        description="Used where caption and fallback are empty (SimpleTuner's default 'description'; a dict "
        "value joins its main_subject, description and text entries).",
    )
    cache_dir: str | None = Field(None, description="The datasets library's cache folder (this key wins).")
    width_column: str | None = Field(None, description="Ignored: sizes are read from the images themselves.")
    height_column: str | None = Field(None, description="Ignored: sizes are read from the images themselves.")
    quality_column: str | None = Field(None, description="Only read by filter_func, which is refused.")
    filter_func: dict[str, Any] | None = Field(
        None, description="Refused: it selects which rows train; filter the dataset before (Dataset.filter)."
    )
    composite_image_config: dict[str, Any] | None = Field(
        None, description="Refused when enabled: grids split into images are not supported."
    )


# Keys that only a huggingface dataset may set (and whose defaults only it reads).
HUGGINGFACE_FIELDS: tuple[str, ...] = (
    "dataset_name", "split", "revision", "image_column", "caption_column", "fallback_caption_column",
    "huggingface", "streaming", "num_proc", "auto_load", "split_composite_images", "composite_image_column",
)
# SimpleTuner reads these from the top level first, then from the huggingface block ...
_TOP_LEVEL_FIRST = ("dataset_name", "split", "revision", "image_column")
# ... and these from the block first, then from the top level.
_BLOCK_FIRST = ("caption_column", "fallback_caption_column", "cache_dir", "streaming", "num_proc", "auto_load")


class HuggingfaceFields(_SharedHuggingfaceKeys):
    """The top-level keys of a huggingface dataset (SimpleTuner's names)."""

    dataset_name: str | None = Field(
        None,
        description="huggingface: a folder written by save_to_disk, a folder of Parquet or image files, a "
        ".parquet file (or glob), or a hub id present in the local hub cache. Nothing is downloaded.",
    )
    split: str = Field("train", description="huggingface: the split to train on.")
    revision: str | None = Field(None, description="huggingface: the hub revision (branch, tag or commit) in the cache.")
    image_column: str = Field("image", description="huggingface: the column holding the images.")
    caption_column: str | list[str] | None = Field(
        None,
        description="huggingface: the caption column (dotted names reach into structs; a list gives "
        "alternative captions). Default 'caption'.",
    )
    huggingface: HuggingfaceOptions | None = Field(None, description="huggingface: SimpleTuner's huggingface block.")
    split_composite_images: bool = Field(False, description="huggingface: refused when true (image grids).")
    composite_image_column: str | None = Field(None, description="huggingface: read only with split_composite_images.")


AWS_FIELDS: tuple[str, ...] = (
    "aws_bucket_name", "aws_data_prefix", "aws_endpoint_url", "aws_region_name", "aws_access_key_id",
    "aws_secret_access_key", "aws_session_token", "aws_max_pool_connections",
)


class AwsFields(BaseModel):
    """The keys of an aws (S3) dataset (SimpleTuner's names). Unset credentials: boto's usual chain
    (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance role)."""

    aws_bucket_name: str | None = Field(None, description="aws: the bucket holding the images.")
    aws_data_prefix: str = Field(
        "", description="aws: the images' prefix inside the bucket (instance_data_dir, when set, wins, as in SimpleTuner)."
    )
    aws_endpoint_url: str | None = Field(None, description="aws: an S3-compatible endpoint (R2, MinIO, ...).")
    aws_region_name: str | None = Field(None, description="aws: the bucket's region.")
    aws_access_key_id: SecretStr | None = Field(None, description="aws: access key id (redacted in every dump).")
    aws_secret_access_key: SecretStr | None = Field(None, description="aws: secret key (redacted in every dump).")
    aws_session_token: SecretStr | None = Field(None, description="aws: session token (redacted in every dump).")
    aws_max_pool_connections: int | None = Field(None, gt=0, description="aws: botocore's connection pool size.")


def merge_huggingface_block(data: Any) -> Any:
    """Raw dataset entry → the same entry with a huggingface dataset's settings resolved as SimpleTuner
    resolves them: block values beside top-level ones, and the huggingface caption and metadata defaults."""
    if not isinstance(data, dict) or data.get("type") != "huggingface":
        return data
    merged = dict(data)
    block = data.get("huggingface")
    block = block.model_dump(exclude_unset=True) if isinstance(block, HuggingfaceOptions) else block
    if isinstance(block, dict):
        for key in _TOP_LEVEL_FIRST:
            if merged.get(key) is None and block.get(key) is not None:
                merged[key] = block[key]
        for key in _BLOCK_FIRST:
            if block.get(key) is not None:
                merged[key] = block[key]
    merged.setdefault("caption_strategy", "huggingface")
    merged.setdefault("metadata_backend", "huggingface")
    return merged


def check_huggingface_fields(spec) -> None:
    """Refuse a huggingface dataset we would read differently from SimpleTuner (a ValueError naming the key)."""
    if not spec.dataset_name:
        raise ValueError('a huggingface dataset needs dataset_name (a save_to_disk folder, Parquet files or a hub id)')
    if spec.caption_strategy not in ("huggingface", "instanceprompt"):
        raise ValueError(
            f"caption_strategy {spec.caption_strategy!r} cannot read a huggingface dataset: use 'huggingface' "
            "(the caption_column) or 'instanceprompt'"
        )
    if spec.metadata_backend != "huggingface":
        raise ValueError("a huggingface dataset needs metadata_backend 'huggingface' (or leave it out)")
    if spec.streaming:
        raise ValueError(
            "streaming: true is not supported: every image is scanned before training (SimpleTuner's own "
            "streaming does not work either); remove it"
        )
    if spec.split_composite_images:
        raise ValueError("split_composite_images: splitting image grids is not supported; remove it")
    block = spec.huggingface
    if block is not None and block.filter_func:
        raise ValueError(
            "huggingface.filter_func would choose which rows train and dreamcore does not apply it: filter the "
            "dataset first (Dataset.filter, then save_to_disk) and point dataset_name at the result"
        )
    if block is not None and block.composite_image_config and block.composite_image_config.get("enabled"):
        raise ValueError("huggingface.composite_image_config: splitting image grids is not supported; remove it")


def check_aws_fields(spec) -> None:
    """An aws image dataset names its bucket; credentials are given whole or not at all."""
    if spec.is_image_like and not spec.aws_bucket_name:
        raise ValueError("an aws dataset needs aws_bucket_name (and aws_data_prefix for a folder inside it)")
    if (spec.aws_access_key_id is None) != (spec.aws_secret_access_key is None):
        raise ValueError(
            "set both aws_access_key_id and aws_secret_access_key, or neither (then the environment's AWS "
            "credentials are used)"
        )
