"""Tensors in Parquet cells: bytes + shape + dtype, bfloat16 through its int16 view, bit-exact."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch

from dreamcore.cache.parquet_io import (
    cell_to_tensor,
    get_tensor,
    put_tensor,
    read_table,
    tensor_fields,
    tensor_to_cell,
    torch_dtype,
    write_table,
)
from dreamcore.storage import ArtifactStore


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.uint8])
def test_cells_round_trip_bit_exactly(dtype) -> None:
    source = (torch.randn(4, 3, 5) * 100).to(dtype)
    data, shape, name = tensor_to_cell(source)
    back = cell_to_tensor(data, shape, name)
    assert back.dtype == dtype and back.shape == (4, 3, 5)
    assert torch.equal(back.view(torch.uint8), source.contiguous().view(torch.uint8))
    assert len(data) == source.numel() * source.element_size()


def test_shards_keep_mixed_shapes_and_nulls(storage_root: str) -> None:
    store = ArtifactStore(storage_root)
    schema = pa.schema([("key", pa.string()), *tensor_fields("latents"), *tensor_fields("mask")])
    tensors = [torch.randn(4, 8, 8).to(torch.bfloat16), torch.randn(4, 8, 16).half()]
    rows = []
    for key, tensor in zip("ab", tensors):
        row = {"key": key}
        put_tensor(row, "latents", tensor)
        put_tensor(row, "mask", None)
        rows.append(row)
    size = write_table(store, "shards/x.parquet", rows, schema)
    assert size > 0
    back = read_table(store, "shards/x.parquet")
    for row, tensor in zip(back, tensors):
        assert torch.equal(get_tensor(row, "latents"), tensor)
        assert get_tensor(row, "mask") is None


def test_cache_dtype_names() -> None:
    assert torch_dtype("fp16") is torch.float16 and torch_dtype("bf16") is torch.bfloat16
    with pytest.raises(ValueError, match="cache_dtype 'fp32'"):
        torch_dtype("fp32")
    with pytest.raises(ValueError, match="cannot store torch.int64"):
        tensor_to_cell(torch.zeros(2, dtype=torch.int64))


def test_reading_a_shard_does_not_import_pandas(tmp_path) -> None:
    """A training process reads cache shards: pq.read_table would import pyarrow.dataset and pandas
    (half a second, ~50 MB resident) for nothing."""
    import subprocess
    import sys

    store = ArtifactStore(str(tmp_path))
    write_table(store, "shard.parquet", [{"key": "a", "n": 1}], pa.schema([("key", pa.string()), ("n", pa.int64())]))
    code = (f"import sys\nfrom dreamcore.cache.parquet_io import read_column, read_table\n"
            f"from dreamcore.storage import ArtifactStore\nstore = ArtifactStore({str(tmp_path)!r})\n"
            "assert read_table(store, 'shard.parquet') == [{'key': 'a', 'n': 1}]\n"
            "assert read_column(store, 'shard.parquet', 'n') == [1]\n"
            "print(sorted(m for m in ('pandas', 'pyarrow.dataset') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
