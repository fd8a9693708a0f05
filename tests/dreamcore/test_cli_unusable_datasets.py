"""A dataset with no usable image (an empty folder, textfile captions without .txt files, every image too small)
is a config error: `config check` and `run` (through Prefect or in this process) say so in one line naming the
dataset, exit 2 and leave every folder as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dreamcore.cli import main
from dreamcore.demo import write_demo_project


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory) -> Path:
    """The demo project (tiny models, data, config), written once: each test points a copy of its config
    elsewhere."""
    return write_demo_project(tmp_path_factory.mktemp("unusable") / "demo")


def _empty_folder(images: Path) -> None:
    shutil.rmtree(images)
    images.mkdir()


def _captions_missing(images: Path) -> None:
    for caption in images.glob("*.txt"):
        caption.unlink()


def _all_too_small(images: Path) -> None:
    """Every image 48 px on its shorter edge, below the demo's minimum_image_size of 64."""
    from PIL import Image

    for path in images.glob("*.png"):
        with Image.open(path) as image:
            image.resize((64, 48)).save(path)
    for path in images.glob("*.jpg"):
        with Image.open(path) as image:
            image.resize((48, 64)).save(path)


CASES = {
    "empty-folder": (_empty_folder, "key 'instance_data_dir': no usable image in instance_data_dir '{images}': "
                     "no image files (the folder is empty); add images to the folder"),
    "captions-missing": (_captions_missing, "key 'caption_strategy': no usable image in instance_data_dir "
                         "'{images}': 8 caption file missing (e.g. toy_00.png: caption file missing: toy_00.txt); "
                         "write a .txt caption beside each image"),
    "all-too-small": (_all_too_small, "key 'minimum_image_size': no usable image in instance_data_dir '{images}': "
                      "8 too small (e.g. toy_00.png: too small: 64x48 (shorter edge 48 px) < minimum_image_size 64 "
                      "(resolution_type pixel)); add larger images or lower minimum_image_size"),
}


def _project(demo_config: Path, tmp_path: Path, spoil) -> tuple[Path, Path]:
    """A copy of the demo's config whose subject dataset is a spoilt copy of the demo's images, with its
    output and storage in tmp_path: (config, subject images)."""
    demo = demo_config.parent
    images = tmp_path / "images"
    shutil.copytree(demo / "data" / "instance_images", images)
    spoil(images)
    datasets = json.loads((demo / "multidatabackend.json").read_text())
    datasets[0]["instance_data_dir"] = str(images)
    (tmp_path / "multidatabackend.json").write_text(json.dumps(datasets))
    keys = json.loads(demo_config.read_text()) | {"--output_dir": str(tmp_path / "output"),
                                                  "--storage_root": str(tmp_path / "artifacts")}
    config = tmp_path / "config.json"
    config.write_text(json.dumps(keys))
    return config, images


@pytest.mark.parametrize("case", list(CASES))
def test_no_usable_image_is_one_error_line_exit_2_and_nothing_written(demo_config, tmp_path, capsys, case) -> None:
    spoil, expected = CASES[case]
    config, images = _project(demo_config, tmp_path, spoil)
    before = sorted(p for p in tmp_path.rglob("*")), sorted(demo_config.parent.rglob("*"))
    line = f"error: {config}, {tmp_path}/multidatabackend.json: dataset 'subject': " + expected.format(images=images)
    for argv in (["config", "check"], ["run"], ["run", "--until", "train"], ["run", "--stage", "ingest"]):
        assert main([*argv, str(config)]) == 2, argv
        output = capsys.readouterr()
        errors = [text for text in output.err.splitlines() if text.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(line), (argv, output.err)
        assert "Traceback" not in output.err and output.out == "", argv
    assert (sorted(tmp_path.rglob("*")), sorted(demo_config.parent.rglob("*"))) == before  # nothing written
