"""Parquet bytes from row dicts and back, without pandas.

pyarrow asks whether every Python or numpy value it converts is a pandas object (`pa.array`,
`Table.from_pylist` and the rest), and asking imports pandas: 0.4 s and ~45 MB resident in a stage
process that never uses it (`benchmarks/import_footprint.py`). So rows become Arrow arrays here through
`Array.from_buffers`, built with numpy, which never asks. Reading goes through `ParquetFile`, not
`pq.read_table`, whose `pyarrow.dataset` imports pandas too.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

_INT32_MAX = 2**31 - 1


def rows_to_parquet(rows: Sequence[dict], schema: pa.Schema) -> bytes:
    """One Parquet file holding `rows` (a key missing from a row is null) under `schema`."""
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table_from_rows(rows, schema), buffer)
    return buffer.getvalue()


def parquet_to_rows(data: bytes, columns: list[str] | None = None) -> list[dict]:
    """The rows of a Parquet file's bytes (only `columns` when given)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(io.BytesIO(data)).read(columns=columns).to_pylist()


def table_from_rows(rows: Sequence[dict], schema: pa.Schema) -> pa.Table:
    """An Arrow table of `rows` under `schema`, what `Table.from_pylist` gives, built without pandas."""
    import pyarrow as pa

    arrays = []
    for field in schema:
        values = [row.get(field.name) for row in rows]
        try:
            arrays.append(array_of(values, field.type))
        except (TypeError, ValueError, OverflowError) as error:
            raise type(error)(f"column {field.name!r}: {error}") from error
    return pa.Table.from_arrays(arrays, schema=schema)


def array_of(values: list, arrow_type: pa.DataType) -> pa.Array:
    """An Arrow array of Python values (None is null) of a string, binary, bool, integer, float or list type."""
    import pyarrow as pa

    types = pa.types
    validity, null_count = _validity(values)
    if types.is_string(arrow_type) or types.is_large_string(arrow_type):
        buffers = _variable_width(values, _utf8, types.is_large_string(arrow_type))
    elif types.is_binary(arrow_type) or types.is_large_binary(arrow_type):
        buffers = _variable_width(values, _bytes, types.is_large_binary(arrow_type))
    elif types.is_boolean(arrow_type):
        bits = np.array([_bool(v) if v is not None else False for v in values], dtype=bool)
        buffers = [pa.py_buffer(np.packbits(bits, bitorder="little"))]
    elif types.is_integer(arrow_type) or types.is_floating(arrow_type):
        buffers = [pa.py_buffer(_numbers(values, arrow_type))]
    elif types.is_list(arrow_type) or types.is_large_list(arrow_type):
        lengths = [len(_sequence(v)) if v is not None else 0 for v in values]
        offsets = _offsets(lengths, types.is_large_list(arrow_type))
        child = array_of([item for v in values if v is not None for item in v], arrow_type.value_type)
        return pa.Array.from_buffers(arrow_type, len(values), [validity, offsets], null_count, children=[child])
    else:
        raise TypeError(f"cannot build a {arrow_type} column without pandas; use a string, binary, bool, "
                        "integer, float or list type")
    return pa.Array.from_buffers(arrow_type, len(values), [validity, *buffers], null_count)


def _validity(values: list) -> tuple[Any, int]:
    """The validity bitmap (None when nothing is null) and the null count."""
    import pyarrow as pa

    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    null_count = len(values) - int(valid.sum())
    return (pa.py_buffer(np.packbits(valid, bitorder="little")) if null_count else None), null_count


def _variable_width(values: list, encode: Callable[[Any], bytes], large: bool) -> list:
    """Offsets and data buffers of a string or binary column (a null cell is empty)."""
    import pyarrow as pa

    cells = [b"" if v is None else encode(v) for v in values]
    return [_offsets([len(cell) for cell in cells], large), pa.py_buffer(b"".join(cells))]


def _offsets(lengths: list[int], large: bool):
    import pyarrow as pa

    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if not large and offsets[-1] > _INT32_MAX:
        raise ValueError(f"{offsets[-1]} bytes or items overflow a 32-bit offset column; use a large_ type")
    return pa.py_buffer(offsets if large else offsets.astype(np.int32))


def _numbers(values: list, arrow_type) -> np.ndarray:
    """Little-endian values of an integer or float column (nulls as 0); no silent rounding or wrapping."""
    dtype = np.dtype(arrow_type.to_pandas_dtype()).newbyteorder("<")  # a numpy dtype; imports no pandas
    integral = np.issubdtype(dtype, np.integer)
    accepted = (int, np.integer) if integral else (int, float, np.integer, np.floating)
    for value in values:
        if value is not None and (isinstance(value, bool) or not isinstance(value, accepted)):
            raise TypeError(f"{_shown(value)} is not {'an integer' if integral else 'a number'}")
    # Python ints, so that numpy range-checks them (it would wrap a numpy scalar); floats round as in pyarrow.
    return np.array([0 if v is None else int(v) if integral else v for v in values], dtype=dtype)


def _utf8(value) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{_shown(value)} is not a string")
    return value.encode("utf-8")


def _bytes(value) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{type(value).__name__} is not bytes")
    return bytes(value)


def _bool(value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{_shown(value)} is not a bool")
    return bool(value)


def _sequence(value) -> Sequence:
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__"):
        raise TypeError(f"{_shown(value)} is not a list")
    return value


def _shown(value) -> str:
    """A value as an error message quotes it: its repr, cut short (a cell may be megabytes)."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
