"""The synthetic demo dataset is deterministic, upright after EXIF and matched by its masks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamcore.data.captions import caption_for
from dreamcore.data.demo import (
    BAD_FILES_MINIMUM_IMAGE_SIZE,
    CLASS_PROMPT,
    INSTANCE_PROMPT,
    write_bad_files,
    write_demo_dataset,
)
from dreamcore.data.images import inspect_image, is_image_name, load_rgb


def open_image(path: Path) -> Image.Image:
    return Image.open(io.BytesIO(path.read_bytes()))  # no file handle left open


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def yellow(pixels: np.ndarray) -> np.ndarray:
    r, g, b = (pixels[..., i].astype(int) for i in range(3))
    return (r > 190) & (g > 150) & (b < 110)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("demo"), n_images=8, seed=0, include_class_images=4)


def test_same_seed_writes_byte_identical_files(tmp_path: Path):
    options = dict(n_images=6, include_class_images=2)
    write_demo_dataset(tmp_path / "a", seed=3, **options)
    write_demo_dataset(tmp_path / "b", seed=3, **options)
    write_demo_dataset(tmp_path / "c", seed=4, **options)
    first, second, other = (tree_bytes(tmp_path / name) for name in "abc")
    assert first == second
    assert first.keys() == other.keys()
    images = [name for name in first if name.startswith("instance_images") and is_image_name(name)]
    assert all(first[name] != other[name] for name in images)


def test_layout_formats_and_captions(demo):
    assert len(demo.image_paths) == len(demo.mask_paths) == len(demo.captions) == 8
    suffixes = [p.suffix for p in demo.image_paths]
    assert suffixes.count(".jpg") >= 2 and suffixes.count(".png") >= 4
    sizes = {open_image(p).size for p in demo.image_paths}
    assert len(sizes) >= 5  # several sizes and aspect ratios
    for path, caption in zip(demo.image_paths, demo.captions):
        assert path.parent == demo.images_dir
        assert caption.startswith(f"{INSTANCE_PROMPT} on a ") and caption.endswith(" background")
        read = lambda rel: (demo.images_dir / rel).read_text("utf-8")  # noqa: E731
        assert caption_for(path.name, "textfile", instance_prompt=None, read_text=read).captions == [caption]
    assert len(set(demo.captions)) > 1  # varied backgrounds


def test_jpegs_carry_exif_orientation_6_or_8(demo):
    orientations = {
        open_image(p).getexif().get(0x0112) for p in demo.image_paths if p.suffix == ".jpg"
    }
    assert orientations == {6, 8}


def test_every_demo_image_passes_inspection(demo):
    for path in (*demo.image_paths, *demo.class_image_paths):
        result = inspect_image(path.read_bytes(), minimum_image_size=64)
        assert result.ok and result.mode_in == "RGB", (path, result.reason)


def test_masks_match_upright_images_and_cover_the_yellow_subject(demo):
    for image_path, mask_path in zip(demo.image_paths, demo.mask_paths):
        assert mask_path == demo.masks_dir / f"{image_path.stem}.png"
        pixels = np.asarray(load_rgb(image_path.read_bytes()))
        mask = np.asarray(open_image(mask_path))
        assert mask.shape == pixels.shape[:2], image_path.name
        assert set(np.unique(mask)) == {0, 255}
        subject = mask == 255
        assert 0.05 < subject.mean() < 0.7
        assert yellow(pixels)[subject].mean() > 0.7, image_path.name  # upright: subject under mask
        assert yellow(pixels)[~subject].mean() < 0.03, image_path.name


def test_rotated_jpegs_are_not_upright_without_exif(demo):
    """Guards the test above: the stored pixels alone do not line up with the masks."""
    for path, mask_path in zip(demo.image_paths, demo.mask_paths):
        if path.suffix != ".jpg":
            continue
        stored = np.asarray(open_image(path).convert("RGB"))
        mask = np.asarray(open_image(mask_path))
        if stored.shape[:2] != mask.shape:
            assert stored.shape[:2] == mask.shape[::-1]
        else:  # square: the subject leaks out of the mask
            assert yellow(stored)[mask == 0].mean() > 0.03


def test_class_images_are_generic_toys(demo):
    assert len(demo.class_image_paths) == 4 and demo.class_images_dir is not None
    assert demo.class_prompt == CLASS_PROMPT
    for path in demo.class_image_paths:
        assert path.with_suffix(".txt").read_text("utf-8").strip() == CLASS_PROMPT
        pixels = np.asarray(load_rgb(path.read_bytes()))
        assert yellow(pixels).mean() < 0.02  # not the subject's yellow


def test_options_can_leave_out_masks_and_captions(tmp_path: Path):
    dataset = write_demo_dataset(tmp_path, n_images=3, include_masks=False, caption_files=False)
    assert dataset.masks_dir is None and dataset.mask_paths == () and dataset.class_image_paths == ()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["toy_00.png", "toy_01.jpg", "toy_02.png"]


def test_bad_file_zoo_is_complete_and_deterministic(tmp_path: Path):
    outcomes = write_bad_files(tmp_path / "a")
    write_bad_files(tmp_path / "b")
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    wanted = {"empty.png", "text_named.png", "truncated.jpg", "too_small.png", "cmyk.jpg", "la.png", "gray16.png",
              "exif_rotated.jpg", "duplicate_b.png", "no_caption.png", "bomb.png"}
    assert wanted <= outcomes.keys()
    assert (tmp_path / "a" / "empty.png").stat().st_size == 0
    assert outcomes["duplicate_b.png"].duplicate_of == "duplicate_a.png"
    captions = {p.stem for p in (tmp_path / "a").glob("*.txt")}
    assert captions == {Path(name).stem for name in outcomes} - {"no_caption"}


def test_bad_file_zoo_outcomes_follow_from_inspect_dedupe_and_captions(tmp_path: Path):
    """The contract ingest is held to: inspect, then keep the first of identical files, then captions."""
    outcomes = write_bad_files(tmp_path)
    first_seen: dict[str, str] = {}

    def read_text(rel: str) -> str | None:
        return (tmp_path / rel).read_text("utf-8") if (tmp_path / rel).exists() else None

    for name in sorted(outcomes):
        result = inspect_image((tmp_path / name).read_bytes(), minimum_image_size=BAD_FILES_MINIMUM_IMAGE_SIZE)
        status, reason = result.status, result.reason
        if result.ok and result.digest in first_seen:
            status, reason = "rejected", f"exact duplicate of {first_seen[result.digest]}"
        elif result.ok:
            first_seen[result.digest] = name
            captions = caption_for(name, "textfile", instance_prompt=None, read_text=read_text)
            status, reason = ("ok", "") if captions.ok else ("rejected", captions.reason)
        assert status == outcomes[name].status, (name, reason)
        assert outcomes[name].reason in reason, (name, reason)
