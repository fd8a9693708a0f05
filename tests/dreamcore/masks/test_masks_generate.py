"""Mask generation on the tiny CLIPSeg: every image gets a mask, per-image resume, strict mode, ingest."""

from __future__ import annotations

import io
import posixpath
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamcore.config import RunConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.data.ingest import ingest_dataset, read_manifest, scan_dataset
from dreamcore.masks import (
    NothingDetectedError,
    generate_masks,
    mask_file_name,
    with_generated_masks,
)
from dreamcore.masks.clipseg import load_mask_model
from dreamcore.masks.generate import PER_IMAGE
from dreamcore.storage import ArtifactStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_config(tiny_models, images_dir: Path, extra_datasets=(), **mask_options) -> RunConfig:
    subject = {"id": "subject", "instance_data_dir": str(images_dir), "caption_strategy": "textfile", "resolution": 64}
    options = {"dataset": "subject", "prompt": "toy", "model": str(tiny_models["clipseg"])} | mask_options
    return RunConfig.model_validate(
        {
            "training": {"pretrained_model_name_or_path": str(tiny_models["sd"]), "mask_generation": options},
            "datasets": [subject, *extra_datasets],
        }
    )


class CountingLoader:
    """load_model that counts how often the CLIPSeg model had to be loaded."""

    def __init__(self) -> None:
        self.loads = 0

    def __call__(self, path):
        self.loads += 1
        return load_mask_model(path, device="cpu")


def generate(store: ArtifactStore, config: RunConfig, loader=None):
    spec = config.dataset("subject")
    rows = read_manifest(store, ingest_dataset(store, scan_dataset(spec)).result)
    return generate_masks(store, config, spec, rows, load_model=loader or CountingLoader()), rows


def test_every_image_gets_a_mask_of_its_size_and_the_folder_ingests(tiny_models, storage_root, tmp_path) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=4)
    config = run_config(tiny_models, demo.images_dir)
    store = ArtifactStore(storage_root)
    outcome, rows = generate(store, config)
    result = outcome.result
    assert outcome.generated == 4 and result.counts == {"masks": 4, "undetected": 0}
    data = result.details["data_uri"]
    for row in rows:  # includes EXIF-rotated JPEGs: masks follow the upright size
        mask = Image.open(io.BytesIO(store.read_bytes(f"masks/{result.key}/data/{mask_file_name(row['path'])}")))
        assert mask.mode == "L" and mask.size == (row["width"], row["height"])
    report = store.read_json(result.details["report"])
    assert [entry["path"] for entry in report] == [row["path"] for row in rows]
    assert all(0.0 <= entry["coverage"] <= 1.0 for entry in report)
    assert Image.open(io.BytesIO(store.read_bytes(result.details["preview"]))).size == (3 * 128, 4 * 128)

    updated = with_generated_masks(config, result)
    masks_spec = updated.dataset("subject-masks")
    assert updated.dataset("subject").conditioning_data == "subject-masks"
    assert masks_spec.instance_data_dir == data and masks_spec.conditioning_type == "mask"
    assert masks_spec.type == ("fsspec" if storage_root.startswith("s3://") else "local")
    assert store.read_json(result.details["snippet"]) == masks_spec.model_dump(mode="json", exclude_defaults=True)
    ingested = ingest_dataset(store, scan_dataset(masks_spec)).result
    assert ingested.counts == {"accepted": 4, "rejected": 0}
    manifest = {posixpath.splitext(r["path"])[0]: (r["width"], r["height"]) for r in read_manifest(store, ingested)}
    assert manifest == {posixpath.splitext(r["path"])[0]: (r["width"], r["height"]) for r in rows}


def test_second_run_generates_nothing_and_resume_fills_only_missing_masks(tiny_models, tmp_path) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=4)
    config = run_config(tiny_models, demo.images_dir)
    store = ArtifactStore(str(tmp_path / "artifacts"))
    first, _ = generate(store, config)
    loader = CountingLoader()
    again, _ = generate(store, config, loader)
    assert (again.generated, loader.loads) == (0, 0) and again.result == first.result

    # An interrupted run: no marker, two per-image masks lost.
    store.remove(f"masks/{first.result.key}")
    cached = [p for p in store.list(PER_IMAGE) if p.endswith(".json")]
    for path in cached[:2]:
        store.remove(path)
    resumed, _ = generate(store, config)
    assert resumed.generated == 2
    assert resumed.result.digest == first.result.digest  # the same masks as before

    # A new image: only its mask is computed.
    Image.new("RGB", (72, 64), (10, 200, 30)).save(demo.images_dir / "extra.png")
    (demo.images_dir / "extra.txt").write_text("a photo of sks toy\n")
    grown, _ = generate(store, config)
    assert grown.generated == 1 and grown.result.counts["masks"] == 5

    # Different post-processing is a different mask for every image.
    padded, _ = generate(store, run_config(tiny_models, demo.images_dir, padding_px=2))
    assert padded.generated == 5 and padded.result.key != grown.result.key


def test_nothing_detected_gives_all_white_masks_and_a_flag_or_fails_in_strict_mode(tiny_models, tmp_path) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=2)
    store = ArtifactStore(str(tmp_path / "artifacts"))
    outcome, rows = generate(store, run_config(tiny_models, demo.images_dir, threshold=0.999))
    report = store.read_json(outcome.result.details["report"])
    assert outcome.result.counts == {"masks": 2, "undetected": 2}
    assert outcome.result.details["undetected"] == [r["path"] for r in rows]
    assert all(not e["detected"] and e["coverage"] == 1.0 and "nothing detected" in e["flag"] for e in report)
    mask_path = f"{outcome.result.details['report'].rsplit('/', 1)[0]}/data/{report[0]['mask']}"
    assert np.asarray(Image.open(io.BytesIO(store.read_bytes(mask_path)))).min() == 255

    loader = CountingLoader()
    with pytest.raises(NothingDetectedError) as error:
        generate(store, run_config(tiny_models, demo.images_dir, threshold=0.999, strict=True), loader)
    assert all(r["path"] in str(error.value) for r in rows) and "mask_generation.strict" in str(error.value)
    assert loader.loads == 0  # the per-image masks were reused; strictness only judges them


def test_declared_conditioning_dataset_is_repointed_and_conflicts_are_named(tiny_models, tmp_path) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=1)
    declared = {
        "id": "my-masks",
        "dataset_type": "conditioning",
        "conditioning_type": "mask",
        "instance_data_dir": "/not/yet/generated",
        "resolution": 32,
    }
    config = run_config(tiny_models, demo.images_dir, [declared], conditioning_dataset="my-masks")
    store = ArtifactStore(str(tmp_path / "artifacts"))
    outcome, _ = generate(store, config)
    updated = with_generated_masks(config, outcome.result)
    assert [d.id for d in updated.datasets] == ["subject", "my-masks"]
    assert updated.dataset("my-masks").resolution == 32  # the user's own settings stay
    assert updated.dataset("my-masks").instance_data_dir == outcome.result.details["data_uri"]

    other = {**declared, "id": "other-masks"}
    subject = {"id": "subject", "instance_data_dir": str(demo.images_dir), "conditioning_data": "other-masks"}
    clash = RunConfig.model_validate({"training": config.training.model_dump(), "datasets": [subject, other, declared]})
    with pytest.raises(ValueError, match="conditioning_data 'other-masks'"):
        with_generated_masks(clash, outcome.result)


def test_missing_model_and_unknown_dataset_are_named(tiny_models, tmp_path) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=1)
    store = ArtifactStore(str(tmp_path / "artifacts"))
    with pytest.raises(FileNotFoundError, match="mask_generation.model"):
        generate(store, run_config(tiny_models, demo.images_dir, model=str(tmp_path / "no-such-model")))
    from dreamcore.masks import masked_dataset

    config = run_config(tiny_models, demo.images_dir, dataset="nope")
    with pytest.raises(ValueError, match="mask_generation.dataset 'nope'.*subject"):
        masked_dataset(config, config.training.mask_generation)
