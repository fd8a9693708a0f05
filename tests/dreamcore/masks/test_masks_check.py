"""User-provided masks are checked, not generated: one per image, the image's size, grayscale-readable."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from dreamcore.config import DatasetSpec
from dreamcore.data.demo import write_demo_dataset
from dreamcore.data.ingest import ingest_dataset, read_manifest, scan_dataset
from dreamcore.masks import MaskCheckError, check_user_masks
from dreamcore.storage import ArtifactStore


@pytest.fixture
def demo(tmp_path):
    return write_demo_dataset(tmp_path / "demo", n_images=3)


def check(tmp_path, demo):
    store = ArtifactStore(str(tmp_path / "artifacts"))
    image = DatasetSpec(id="subject", instance_data_dir=str(demo.images_dir), caption_strategy="textfile")
    masks = DatasetSpec(
        id="subject-masks", dataset_type="conditioning", conditioning_type="mask", instance_data_dir=str(demo.masks_dir)
    )
    rows = read_manifest(store, ingest_dataset(store, scan_dataset(image)).result)
    return store, check_user_masks(store, image, rows, masks)


def test_good_user_masks_pass_with_a_coverage_report(tmp_path, demo) -> None:
    store, result = check(tmp_path, demo)
    assert result.counts["masks"] == 3 and result.details["mode"] == "user"
    report = store.read_json(result.details["report"])
    expected = []
    for path in demo.mask_paths:
        pixels = Image.open(path).convert("L")
        expected.append(round(sum(pixels.getdata()) / 255 / (pixels.width * pixels.height), 6))
    assert [entry["coverage"] for entry in report] == pytest.approx(expected, abs=1e-5)
    assert 0 < min(expected) and max(expected) < 1  # the demo masks really mask something
    assert Image.open(io.BytesIO(store.read_bytes(result.details["preview"]))).size == (384, 384)
    again = check(tmp_path, demo)[1]
    assert again == result


def test_mask_of_the_wrong_size_is_rejected_naming_the_file(tmp_path, demo) -> None:
    Image.new("L", (50, 40), 255).save(demo.mask_paths[1])  # toy_01 (a rotated JPEG image, 128x96 upright)
    with pytest.raises(MaskCheckError) as error:
        check(tmp_path, demo)
    message = str(error.value)
    assert "mask toy_01.png is 50x40 but its image toy_01.jpg is 128x96" in message
    assert "toy_00" not in message and "toy_02" not in message


def test_missing_duplicate_and_unreadable_masks_are_all_listed(tmp_path, demo) -> None:
    demo.mask_paths[0].unlink()
    Image.new("L", (96, 128), 255).save(demo.masks_dir / "toy_02.jpg")  # a second mask for toy_02
    (demo.masks_dir / "toy_01.png").write_bytes(b"not a png")
    with pytest.raises(MaskCheckError) as error:
        check(tmp_path, demo)
    message = str(error.value)
    assert "3 problem(s)" in message
    assert "toy_00.png: no mask" in message
    assert "toy_02.png: more than one mask (toy_02.jpg, toy_02.png)" in message
    assert "mask toy_01.png (for toy_01.jpg): not an image" in message
