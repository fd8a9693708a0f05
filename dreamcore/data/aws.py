"""aws datasets (SimpleTuner's "type": "aws"): a bucket opened through s3fs with the dataset's own aws_*
settings. Beside dreamcore.data.huggingface; dreamcore.data.sources picks between them, and the caption
metadata of an aws dataset is read here without going through that choice.
"""

from __future__ import annotations

import posixpath

from dreamcore.config import DatasetSpec
from dreamcore.config.sources import REDACTED


def aws_location(spec: DatasetSpec) -> str:
    """Where an aws dataset's images are, for messages (never a credential)."""
    return f"s3://{aws_root(spec)}" + (f" at {spec.aws_endpoint_url}" if spec.aws_endpoint_url else "")


def aws_root(spec: DatasetSpec) -> str:
    """bucket/prefix of an aws dataset; instance_data_dir wins over aws_data_prefix, as in SimpleTuner."""
    prefix = (spec.instance_data_dir or spec.aws_data_prefix or "").strip("/")
    return posixpath.join(spec.aws_bucket_name or "", prefix).rstrip("/")


def aws_fs(spec: DatasetSpec):
    """An s3fs file system with the dataset's endpoint, region, pool size and credentials."""
    try:
        import s3fs
    except ImportError as error:
        raise RuntimeError(f"dataset {spec.id!r} is an aws dataset: install s3fs (pip install s3fs)") from error
    options: dict = {}
    if spec.aws_access_key_id is not None:
        options["key"] = _secret(spec, "aws_access_key_id")
        options["secret"] = _secret(spec, "aws_secret_access_key")
    if spec.aws_session_token is not None:
        options["token"] = _secret(spec, "aws_session_token")
    if spec.aws_endpoint_url:
        options["endpoint_url"] = spec.aws_endpoint_url
    # A null region is left to boto (AWS_DEFAULT_REGION, the profile); SimpleTuner's "auto" fallback would
    # break request signing on AWS itself. R2 and similar services: set "auto" explicitly.
    if spec.aws_region_name:
        options["client_kwargs"] = {"region_name": spec.aws_region_name}
    if spec.aws_max_pool_connections:
        options["config_kwargs"] = {"max_pool_connections": spec.aws_max_pool_connections}
    return s3fs.S3FileSystem(**options)


def _secret(spec: DatasetSpec, name: str) -> str:
    value = getattr(spec, name).get_secret_value()
    if value == REDACTED:
        raise ValueError(
            f"dataset {spec.id!r}: {name} is {REDACTED!r}, the redacted copy a stored config keeps: give the "
            "credentials through the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or the config file"
        )
    return value
