"""Parquet shards of tensors: each tensor is a binary column plus its shape and dtype.

Rows of one shard may have different shapes (aspect buckets), so tensors are stored as raw
little-endian bytes with `<name>_shape` (list of int32) and `<name>_dtype` columns. bfloat16 has no
numpy dtype: it is stored as the int16 view of its bits and restored bit-exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dreamcore.storage.parquet import parquet_to_rows, rows_to_parquet

if TYPE_CHECKING:
    import pyarrow as pa
    import torch

    from dreamcore.storage import ArtifactStore

CACHE_DTYPES = ("fp16", "bf16")
_NUMPY_DTYPES = {"float16": np.float16, "float32": np.float32, "uint8": np.uint8, "bfloat16": np.int16}


def torch_dtype(name: str):
    """torch dtype of a cache_dtype setting ("fp16" / "bf16")."""
    import torch

    table = {"fp16": torch.float16, "bf16": torch.bfloat16}
    if name not in table:
        raise ValueError(f"cache_dtype {name!r} is not one of {', '.join(CACHE_DTYPES)}")
    return table[name]


def tensor_to_cell(tensor: torch.Tensor) -> tuple[bytes, list[int], str]:
    """(bytes, shape, dtype name) of a CPU tensor; bfloat16 goes through its int16 bit view."""
    import torch

    tensor = tensor.detach().to("cpu").contiguous()
    name = str(tensor.dtype).removeprefix("torch.")
    if name not in _NUMPY_DTYPES:
        raise ValueError(f"cannot store {tensor.dtype} in a cache column; use float16, bfloat16, float32 or uint8")
    array = tensor.view(torch.int16).numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy()
    return array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes(), list(tensor.shape), name


def cell_to_tensor(data: bytes, shape: list[int], dtype: str) -> torch.Tensor:
    """The tensor stored by `tensor_to_cell` (a fresh, writable CPU tensor)."""
    import torch

    if dtype not in _NUMPY_DTYPES:
        raise ValueError(f"unknown cached dtype {dtype!r}")
    array = np.frombuffer(data, dtype=np.dtype(_NUMPY_DTYPES[dtype]).newbyteorder("<")).reshape(shape)
    tensor = torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True))
    return tensor.view(torch.bfloat16) if dtype == "bfloat16" else tensor


def tensor_fields(name: str) -> list[tuple[str, Any]]:
    """The three Parquet fields that hold tensor column `name`."""
    import pyarrow as pa

    return [(name, pa.large_binary()), (f"{name}_shape", pa.list_(pa.int32())), (f"{name}_dtype", pa.string())]


def put_tensor(row: dict, name: str, tensor: torch.Tensor | None) -> None:
    """Store `tensor` (or nulls) into a row dict under the three columns of `name`."""
    if tensor is None:
        row.update({name: None, f"{name}_shape": None, f"{name}_dtype": None})
        return
    data, shape, dtype = tensor_to_cell(tensor)
    row.update({name: data, f"{name}_shape": shape, f"{name}_dtype": dtype})


def get_tensor(row: dict, name: str) -> torch.Tensor | None:
    """The tensor of column `name` in a row read back from a shard (None when null)."""
    if row.get(name) is None:
        return None
    return cell_to_tensor(row[name], row[f"{name}_shape"], row[f"{name}_dtype"])


def write_table(store: ArtifactStore, relative: str, rows: list[dict], schema: pa.Schema) -> int:
    """Write rows as one Parquet file atomically; returns its size in bytes."""
    data = rows_to_parquet(rows, schema)
    store.write_bytes(relative, data)
    return len(data)


def read_table(store: ArtifactStore, relative: str, columns: list[str] | None = None) -> list[dict]:
    """Rows of a Parquet file (only `columns` when given)."""
    return parquet_to_rows(store.read_bytes(relative), columns)


def read_column(store: ArtifactStore, relative: str, column: str) -> list:
    """One column of a Parquet file, read through fsspec without fetching the other columns."""
    import pyarrow.parquet as pq

    with store.fs.open(store.path(relative), "rb") as handle:
        return pq.ParquetFile(handle).read(columns=[column]).column(column).to_pylist()


def read_columns(store: ArtifactStore, relative: str, columns: tuple[str, ...]) -> dict[str, list]:
    """The named columns of a Parquet file that it has (an older file may lack some), read through fsspec."""
    import pyarrow.parquet as pq

    with store.fs.open(store.path(relative), "rb") as handle:
        parquet = pq.ParquetFile(handle)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        table = parquet.read(columns=present)
    return {c: table.column(c).to_pylist() for c in present}
