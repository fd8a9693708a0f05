"""Caption strategies: instanceprompt, textfile (over any read_text) and filename."""

from __future__ import annotations

from pathlib import Path

import pytest

from dreamcore.data.captions import (
    CAPTION_STRATEGIES,
    caption_for,
    caption_from_filename,
    caption_path,
)


def reader(files: dict[str, str]):
    asked: list[str] = []

    def read_text(path: str) -> str | None:
        asked.append(path)
        return files.get(path)

    read_text.asked = asked
    return read_text


def never_read(path: str) -> str | None:
    raise AssertionError(f"read {path}")


def test_instanceprompt_uses_the_prompt():
    result = caption_for("a/b.png", "instanceprompt", instance_prompt="a photo of sks dog", read_text=never_read)
    assert result.captions == ["a photo of sks dog"] and result.reason == "" and result.ok


@pytest.mark.parametrize("prompt", [None, "", "   "])
def test_instanceprompt_without_a_prompt_is_a_config_error(prompt):
    with pytest.raises(ValueError, match="instance_prompt"):
        caption_for("a.png", "instanceprompt", instance_prompt=prompt, read_text=never_read)


def test_textfile_lines_are_alternative_captions():
    read_text = reader({"sub/dog_1.txt": "\ufeffa photo of sks dog\r\n\n   on   grass  \r\n\n"})
    result = caption_for("sub/dog_1.jpg", "textfile", instance_prompt="ignored", read_text=read_text)
    assert result.captions == ["a photo of sks dog", "on grass"]
    assert result.ok and read_text.asked == ["sub/dog_1.txt"]


def test_textfile_missing_rejects_with_the_path():
    result = caption_for("sub/dog.v2.png", "textfile", instance_prompt=None, read_text=reader({}))
    assert result.captions == []
    assert result.reason == "caption file missing: sub/dog.v2.txt"
    assert not result.ok


def test_textfile_with_only_blank_lines_rejects():
    result = caption_for("dog.png", "textfile", instance_prompt=None, read_text=reader({"dog.txt": "\n  \n"}))
    assert (result.captions, result.reason) == ([], "caption file empty: dog.txt")


def test_textfile_reads_real_files(tmp_path: Path):
    (tmp_path / "cat.txt").write_text("a photo of sks cat\n", encoding="utf-8")

    def read_text(relative: str) -> str | None:
        path = tmp_path / relative
        return path.read_text(encoding="utf-8") if path.exists() else None

    assert caption_for("cat.webp", "textfile", instance_prompt=None, read_text=read_text).captions == [
        "a photo of sks cat"
    ]


@pytest.mark.parametrize(
    "path, caption",
    [
        ("sks_dog.jpg", "sks dog"),
        ("photos/sks-dog-on-grass_2.png", "sks dog on grass"),
        ("sks dog (3).jpg", "sks dog"),
        ("dog(12).png", "dog"),
        ("a_photo-12.webp", "a photo"),
        ("sks__dog   x.png", "sks dog x"),
        ("dog_2_3.png", "dog 2"),  # only the last counter goes
        ("2024.png", "2024"),
    ],
)
def test_filename_caption(path, caption):
    assert caption_from_filename(path) == caption
    result = caption_for(path, "filename", instance_prompt=None, read_text=never_read)
    assert result.captions == [caption]


def test_filename_that_is_only_a_counter_rejects():
    result = caption_for("x/_1.png", "filename", instance_prompt=None, read_text=never_read)
    assert result.captions == [] and "empty caption" in result.reason


def test_unknown_strategy_lists_the_allowed_values():
    with pytest.raises(ValueError, match="instanceprompt, textfile, filename, parquet, huggingface"):
        caption_for("a.png", "csv", instance_prompt=None, read_text=never_read)
    assert CAPTION_STRATEGIES == ("instanceprompt", "textfile", "filename", "parquet", "huggingface")


def test_caption_path():
    assert caption_path("a/b/c.d.jpeg") == "a/b/c.d.txt"
