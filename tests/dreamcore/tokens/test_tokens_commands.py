"""`dreamcore tokens find` and `dreamcore tokens lookalike` from the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from dreamcore.cli import main


def test_find_prints_the_table_and_the_snippet_and_writes_the_artifact(
    sdxl_text_folder: Path, tmp_path: Path, token_words, capsys
) -> None:
    wordlist = tmp_path / "words.txt"
    wordlist.write_text("\n".join(token_words["common"]))
    output = tmp_path / "tokens.json"
    argv = [
        "tokens",
        "find",
        "--model",
        str(sdxl_text_folder),
        "--class-word",
        "dog",
        "--top",
        "6",
        "--wordlist",
        str(wordlist),
        "--device",
        "cpu",
        "--output",
        str(output),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr()
    rows = json.loads(output.read_text())["rows"]
    assert len(rows) == 6 and rows[0]["rank"] == 1
    header, _rule, first_line = printed.out.splitlines()[:3]
    assert header.split() == ["rank", "token", "ids_tokenizer", "ids_tokenizer_2", "score"]
    assert first_line.split() == [
        "1",
        rows[0]["token"],
        str(rows[0]["ids_tokenizer"][0]),
        str(rows[0]["ids_tokenizer_2"][0]),
        f"{rows[0]['score']:.6f}",
    ]
    assert f'"instance_prompt": "{rows[0]["token"]} dog"' in printed.out
    assert "scanning tokens" in printed.err  # the progress bar

    csv_output = tmp_path / "tokens.csv"
    assert main([*argv[:-1], str(csv_output), "--no-progress"]) == 0
    with csv_output.open() as handle:
        assert [row["token"] for row in csv.DictReader(handle)] == [row["token"] for row in rows]


def test_lookalike_ranks_names_from_arguments_and_a_file(sdxl_text_folder: Path, tmp_path: Path, capsys) -> None:
    names_file = tmp_path / "names.txt"
    names_file.write_text("Keanu Reeves\n\nTom Hanks\n")
    output = tmp_path / "names.json"
    argv = [
        "tokens",
        "lookalike",
        "--model",
        str(sdxl_text_folder),
        "--class-word",
        "dog",
        "--names",
        "cat",
        "photo",
        "--names-file",
        str(names_file),
        "--device",
        "cpu",
        "--output",
        str(output),
    ]
    assert main(argv) == 0
    rows = json.loads(output.read_text())["rows"]
    assert sorted(row["name"] for row in rows) == ["Keanu Reeves", "Tom Hanks", "cat", "photo"]
    assert [row["score"] for row in rows] == sorted((row["score"] for row in rows), reverse=True)
    assert f"best stand-in: {rows[0]['name']!r}" in capsys.readouterr().out


def test_lookalike_compares_names_with_subject_images(sdxl_text_folder: Path, tiny_models, tmp_path: Path) -> None:
    images = tmp_path / "subject"
    images.mkdir()
    for i in range(2):
        Image.new("RGB", (40, 40), (60 * i, 120, 200)).save(images / f"{i}.png")
    (images / "notes.txt").write_text("not an image")
    output = tmp_path / "names.json"
    assert (
        main(
            [
                "tokens",
                "lookalike",
                "--model",
                str(sdxl_text_folder),
                "--class-word",
                "dog",
                "--names",
                "cat",
                "Tom Hanks",
                "--images",
                str(images),
                "--clip-model",
                str(tiny_models["clip"]),
                "--image-weight",
                "0.4",
                "--device",
                "cpu",
                "--output",
                str(output),
            ]
        )
        == 0
    )
    for row in json.loads(output.read_text())["rows"]:
        assert -1 <= row["image_similarity"] <= 1
        assert row["score"] == pytest.approx(0.6 * row["class_similarity"] + 0.4 * row["image_similarity"], abs=2e-6)


def test_lookalike_with_images_but_no_clip_model_says_what_is_missing(sdxl_text_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="give both --images and --clip-model"):
        main(
            [
                "tokens",
                "lookalike",
                "--model",
                str(sdxl_text_folder),
                "--class-word",
                "dog",
                "--names",
                "cat",
                "--images",
                str(tmp_path),
            ]
        )
