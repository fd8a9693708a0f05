"""Parquet rows without pandas: the same table pyarrow's own from_pylist builds, and pandas never imported."""

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from dreamcore.storage.parquet import parquet_to_rows, rows_to_parquet, table_from_rows

SCHEMA = pa.schema([
    ("text", pa.string()),
    ("big_text", pa.large_string()),
    ("blob", pa.binary()),
    ("big_blob", pa.large_binary()),
    ("flag", pa.bool_()),
    ("small", pa.int8()),
    ("count", pa.int32()),
    ("wide", pa.int64()),
    ("unsigned", pa.uint16()),
    ("half", pa.float16()),
    ("ratio", pa.float32()),
    ("precise", pa.float64()),
    ("shape", pa.list_(pa.int32())),
    ("captions", pa.list_(pa.string())),
    ("nested", pa.large_list(pa.list_(pa.float64()))),
])
ROWS = [
    {"text": "héllo ✓", "big_text": "x" * 1000, "blob": b"\x00\xff", "big_blob": bytes(range(256)), "flag": True,
     "small": -128, "count": 2**31 - 1, "wide": -(2**63), "unsigned": 65535, "half": 0.5, "ratio": 1.25,
     "precise": 1e-300, "shape": [4, 8, 8], "captions": ["a photo of sks dog", None, ""],
     "nested": [[1.0, 2.5], None, []]},
    {},  # every column null
    {"text": "", "big_text": "", "blob": b"", "big_blob": bytearray(b"ab"), "flag": False, "small": np.int8(0),
     "count": np.int64(0), "wide": 0, "unsigned": 0, "half": 2, "ratio": -0.0, "precise": float("inf"), "shape": [],
     "captions": [], "nested": []},
    {"text": None, "flag": None, "shape": None, "count": 7},
]


def test_rows_make_the_table_pyarrows_from_pylist_makes():
    assert table_from_rows(ROWS, SCHEMA).equals(pa.Table.from_pylist(ROWS, schema=SCHEMA))


def test_parquet_bytes_round_trip_to_the_same_rows():
    expected = pa.Table.from_pylist(ROWS, schema=SCHEMA).to_pylist()

    assert parquet_to_rows(rows_to_parquet(ROWS, SCHEMA)) == expected
    assert parquet_to_rows(rows_to_parquet(ROWS, SCHEMA), ["count"]) == [{"count": r["count"]} for r in expected]


def test_no_rows_make_an_empty_file_with_the_schema():
    import io

    import pyarrow.parquet as pq

    data = rows_to_parquet([], SCHEMA)
    assert parquet_to_rows(data) == []
    assert pq.ParquetFile(io.BytesIO(data)).schema_arrow == SCHEMA


@pytest.mark.parametrize(("column", "value", "error", "message"), [
    ("count", 2**31, OverflowError, "column 'count'.*out of bounds"),
    ("count", 1.5, TypeError, "column 'count': 1.5 is not an integer"),
    ("unsigned", np.int64(-1), OverflowError, "column 'unsigned'.*out of bounds"),
    ("count", True, TypeError, "column 'count': True is not an integer"),
    ("count", "7", TypeError, "column 'count': '7' is not an integer"),
    ("ratio", "1.0", TypeError, "column 'ratio': '1.0' is not a number"),
    ("text", b"bytes", TypeError, "column 'text': b'bytes' is not a string"),
    ("blob", "text", TypeError, "column 'blob': str is not bytes"),
    ("flag", 1, TypeError, "column 'flag': 1 is not a bool"),
    ("shape", "abc", TypeError, "column 'shape': 'abc' is not a list"),
    ("shape", [1, "2"], TypeError, "column 'shape': '2' is not an integer"),
])
def test_a_value_of_the_wrong_kind_is_refused_naming_its_column(column, value, error, message):
    with pytest.raises(error, match=message):
        table_from_rows([{column: value}], SCHEMA)


def test_a_type_it_cannot_build_is_refused():
    with pytest.raises(TypeError, match="column 'when'.*timestamp"):
        table_from_rows([{"when": 1}], pa.schema([("when", pa.timestamp("s"))]))


def test_writing_and_reading_never_import_pandas():
    """pyarrow's own converters import pandas (0.4 s, ~45 MB) to ask whether each value is a pandas object."""
    code = (
        "import sys\nimport pyarrow as pa\nfrom dreamcore.storage.parquet import parquet_to_rows, rows_to_parquet\n"
        "schema = pa.schema([('key', pa.string()), ('n', pa.int32()), ('shape', pa.list_(pa.int32())),"
        " ('data', pa.large_binary()), ('ok', pa.bool_())])\n"
        "rows = [{'key': 'a', 'n': 1, 'shape': [2, 3], 'data': b'xy', 'ok': True}, {}]\n"
        "assert parquet_to_rows(rows_to_parquet(rows, schema))[0] == rows[0]\n"
        "print(sorted(m for m in ('pandas', 'pyarrow.dataset') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
