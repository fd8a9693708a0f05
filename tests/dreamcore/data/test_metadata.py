"""Caption metadata tables (caption_strategy "parquet"): Parquet and JSONL files, columns, fallbacks."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dreamcore.config import DatasetSpec
from dreamcore.data.captions import caption_for
from dreamcore.data.metadata import load_caption_metadata, parse_caption_metadata

ROWS = [
    {"id": "a", "caption": "a photo of sks toy", "tags": "toy"},
    {"id": "b", "caption": ["sks toy on grass", "sks toy, outdoors"], "tags": None},
    {"id": "c", "caption": "", "tags": "yellow toy"},
    {"id": "d", "caption": None, "tags": None},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def never_read(path: str) -> str:
    raise AssertionError(f"the parquet strategy must not read {path}")


def test_jsonl_captions_with_alternatives_and_fallback(tmp_path: Path) -> None:
    spec = DatasetSpec(
        id="subject",
        instance_data_dir=str(tmp_path),
        caption_strategy="parquet",
        parquet={"path": "captions.jsonl", "fallback_caption_column": "tags"},
    )
    write_jsonl(tmp_path / "captions.jsonl", ROWS)
    metadata = load_caption_metadata(spec)

    def captions(path: str):
        return caption_for(path, "parquet", instance_prompt=None, read_text=never_read, metadata=metadata)

    assert captions("a.png").captions == ["a photo of sks toy"]
    assert captions("b.jpg").captions == ["sks toy on grass", "sks toy, outdoors"]
    assert captions("c.png").captions == ["yellow toy"]
    assert not captions("d.png").ok and "empty caption for 'd'" in captions("d.png").reason
    assert "no caption for 'zzz'" in captions("zzz.png").reason


def test_parquet_file_keyed_by_relative_path_with_extension(tmp_path: Path) -> None:
    table = pa.table({"file": ["people/anna.jpg", "pets/rex.png"], "text": ["anna smiling", "rex the dog"]})
    pq.write_table(table, tmp_path / "meta.parquet")
    spec = DatasetSpec(
        id="d",
        instance_data_dir=str(tmp_path / "images"),
        caption_strategy="parquet",
        parquet={
            "path": str(tmp_path / "meta.parquet"),
            "filename_column": "file",
            "caption_column": "text",
            "identifier_includes_extension": True,
        },
    )
    metadata = load_caption_metadata(spec)
    assert metadata.lookup("people/anna.jpg") == (["anna smiling"], "")
    assert metadata.lookup("pets/rex.png") == (["rex the dog"], "")
    assert metadata.lookup("people/anna.png")[0] == []
    assert len(metadata.digest) == 64


def test_bad_metadata_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"row 1 has no column\(s\) \['caption'\]"):
        parse_caption_metadata(b'{"id": "a"}\n', source="m.jsonl")
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        parse_caption_metadata(b'{"id": "a", "caption": "x"}\nnot json\n', source="m.jsonl")
    with pytest.raises(ValueError, match="appears twice"):
        parse_caption_metadata(b'{"id": "a", "caption": "x"}\n{"id": "a.png", "caption": "y"}\n', source="m.jsonl")
    with pytest.raises(ValueError, match="must be a .parquet or .jsonl"):
        parse_caption_metadata(b"id,caption", source="m.csv")
    spec = DatasetSpec(
        id="d", instance_data_dir=str(tmp_path), caption_strategy="parquet", parquet={"path": "none.jsonl"}
    )
    with pytest.raises(FileNotFoundError, match="none.jsonl"):
        load_caption_metadata(spec)


def test_parquet_strategy_needs_its_block_and_its_table() -> None:
    with pytest.raises(ValueError, match="needs a parquet block"):
        DatasetSpec(id="d", instance_data_dir="/x", caption_strategy="parquet")
    with pytest.raises(ValueError, match="needs the dataset's caption metadata table"):
        caption_for("a.png", "parquet", instance_prompt=None, read_text=never_read)
