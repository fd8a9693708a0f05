"""One way to reach a dataset's files, whatever its type: (fsspec file system, root folder).

local and fsspec datasets open instance_data_dir; aws datasets open their bucket with the dataset's own
aws_* settings through s3fs (dreamcore.data.aws); huggingface datasets are read through
dreamcore.data.huggingface, which shows the dataset's rows as image files. Every stage that reads a
dataset's images goes through dataset_fs, so they all see the same files.
"""

from __future__ import annotations

from fsspec.core import url_to_fs

from dreamcore.config import DatasetSpec
from dreamcore.data.aws import aws_fs, aws_location, aws_root


def dataset_fs(spec: DatasetSpec):
    """(file system, root) of a dataset's images; paths inside are root + "/" + relative path."""
    if spec.type == "huggingface":
        from dreamcore.data.huggingface import huggingface_fs

        return huggingface_fs(spec)
    if spec.type == "aws":
        return aws_fs(spec), aws_root(spec)
    fs, root = url_to_fs(spec.instance_data_dir)
    return fs, root.rstrip("/")


def dataset_location(spec: DatasetSpec) -> str:
    """Where a dataset's images are, for messages (never a credential)."""
    if spec.type == "huggingface":
        return f"huggingface dataset {spec.dataset_name!r} (split {spec.split!r})"
    if spec.type == "aws":
        return aws_location(spec)
    return f"instance_data_dir {spec.instance_data_dir!r}"
