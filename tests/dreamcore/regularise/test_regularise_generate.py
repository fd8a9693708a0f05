"""Class images on the tiny SD: reproducible per seed, resumable per image, growable, ingestible."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dreamcore.config import RunConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.data.ingest import ingest_dataset, read_manifest, scan_dataset
from dreamcore.regularise import (
    class_image_plan,
    generate_class_images,
    missing_indices,
    with_class_images,
)
from dreamcore.regularise.sampler import load_sampler
from dreamcore.storage import ArtifactStore

PROMPT = "a photo of a toy"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_config(tiny_models, tmp_path, datasets=None, model="sd", **class_options) -> RunConfig:
    options = {"prompt": PROMPT, "count": 4, "num_inference_steps": 2, "batch_size": 2, "base_seed": 7} | class_options
    subject = {"id": "subject", "instance_data_dir": str(tmp_path), "resolution": 64, "crop": True}
    training = {
        "pretrained_model_name_or_path": str(tiny_models[model]),
        "mixed_precision": "no",
        "class_images": options,
    }
    return RunConfig.model_validate({"training": training, "datasets": datasets or [subject]})


class CountingLoader:
    def __init__(self) -> None:
        self.loads = 0

    def __call__(self, *args, **kwargs):
        self.loads += 1
        return load_sampler(*args, **kwargs, device="cpu")


def pixels(store: ArtifactStore, result, index: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(store.read_bytes(f"class_images/{result.key}/data/class_{index:06d}.png"))))


def test_same_seeds_give_identical_images_in_two_separate_runs(tiny_models, tmp_path) -> None:
    config = run_config(tiny_models, tmp_path)
    first_store, second_store = ArtifactStore(str(tmp_path / "a")), ArtifactStore(str(tmp_path / "b"))
    first = generate_class_images(first_store, config).result
    second = generate_class_images(second_store, config).result
    assert first.digest == second.digest
    images = [pixels(first_store, first, i) for i in range(4)]
    for index in range(4):
        assert np.array_equal(images[index], pixels(second_store, second, index))
    assert not np.array_equal(images[0], images[1])  # different seeds, different pictures
    report = first_store.read_json(first.details["report"])
    assert [entry["seed"] for entry in report] == [7, 8, 9, 10]

    shifted = run_config(tiny_models, tmp_path, base_seed=8)  # image 0 of this set is image 1 above
    moved_store = ArtifactStore(str(tmp_path / "c"))
    moved = generate_class_images(moved_store, shifted).result
    assert np.abs(pixels(moved_store, moved, 0).astype(int) - images[1].astype(int)).max() <= 1


def test_resume_after_a_crash_generates_only_the_missing_indices(tiny_models, tmp_path) -> None:
    config = run_config(tiny_models, tmp_path, count=6, batch_size=1)
    store = ArtifactStore(str(tmp_path / "artifacts"))

    def crash_after_three(done: int, total: int) -> None:
        if done == 3:
            raise RuntimeError("injected failure")

    with pytest.raises(RuntimeError, match="injected failure"):
        generate_class_images(store, config, crash_after_three)
    plan = class_image_plan(config)
    assert missing_indices(store, plan) == [3, 4, 5]
    resumed = generate_class_images(store, config)
    assert resumed.generated == [3, 4, 5]

    reference_store = ArtifactStore(str(tmp_path / "reference"))
    reference = generate_class_images(reference_store, config).result
    assert resumed.result.digest == reference.digest  # resuming changed no picture

    loader = CountingLoader()
    again = generate_class_images(store, config, load=loader)
    assert again.generated == [] and loader.loads == 0 and again.result == resumed.result


def test_asking_for_more_images_generates_only_the_new_ones(tiny_models, tmp_path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    small = generate_class_images(store, run_config(tiny_models, tmp_path, count=3))
    larger = generate_class_images(store, run_config(tiny_models, tmp_path, count=5))
    assert small.generated == [0, 1, 2] and larger.generated == [3, 4]
    assert larger.result.key != small.result.key
    assert sorted(p.rsplit("/", 1)[-1] for p in store.list(f"class_images/{larger.result.key}/data")) == [
        f"class_{i:06d}.{ext}" for i in range(5) for ext in ("png", "txt")
    ]
    assert len(store.list(f"class_images/{small.result.key}/data")) == 6  # the smaller set is intact
    fewer = generate_class_images(store, run_config(tiny_models, tmp_path, count=2))
    assert fewer.generated == [] and fewer.result.counts == {"images": 2}


def test_generated_folder_ingests_as_a_regularisation_dataset(tiny_models, storage_root, tmp_path) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=2)
    subject = {
        "id": "subject",
        "instance_data_dir": str(demo.images_dir),
        "caption_strategy": "textfile",
        "resolution": 64,
    }
    config = run_config(tiny_models, tmp_path, datasets=[subject], resolutions=[64, [64, 48]], count=3)
    store = ArtifactStore(storage_root)
    result = generate_class_images(store, config).result
    updated = with_class_images(config, result)
    spec = updated.dataset("regularisation")
    assert spec.is_regularisation_data and spec.caption_strategy == "textfile" and spec.resolution == 64
    assert spec.type == ("fsspec" if storage_root.startswith("s3://") else "local")
    assert store.read_json(result.details["snippet"]) == spec.model_dump(mode="json", exclude_defaults=True)
    ingested = ingest_dataset(store, scan_dataset(spec)).result
    rows = read_manifest(store, ingested)
    assert ingested.counts == {"accepted": 3, "rejected": 0}
    assert [(r["width"], r["height"], r["captions"]) for r in rows] == [
        (64, 64, [PROMPT]),
        (64, 48, [PROMPT]),
        (64, 64, [PROMPT]),
    ]


def test_declared_regularisation_dataset_keeps_its_settings(tiny_models, tmp_path) -> None:
    datasets = [
        {"id": "subject", "instance_data_dir": str(tmp_path), "resolution": 64},
        {"id": "reg", "instance_data_dir": "/placeholder", "resolution": 32, "repeats": 0},
    ]
    config = run_config(tiny_models, tmp_path, datasets=datasets, dataset="reg", count=1)
    result = generate_class_images(ArtifactStore(str(tmp_path / "artifacts")), config).result
    spec = with_class_images(config, result).dataset("reg")
    assert spec.resolution == 32 and spec.caption_strategy == "textfile" and not spec.is_regularisation_data
    assert spec.instance_data_dir == result.details["data_uri"]


def test_int8_quanto_base_is_honoured(tiny_models, tmp_path) -> None:
    from optimum.quanto import QModuleMixin

    pipe = load_sampler(str(tiny_models["sd"]), "euler", "int8-quanto", "no", device="cpu")
    assert any(isinstance(module, QModuleMixin) for module in pipe.unet.modules())
    store = ArtifactStore(str(tmp_path / "artifacts"))
    plain = generate_class_images(store, run_config(tiny_models, tmp_path, count=1)).result
    quantised = generate_class_images(
        store, run_config(tiny_models, tmp_path, count=1, base_model_precision="int8-quanto")
    ).result
    assert quantised.key != plain.key
    assert not np.array_equal(pixels(store, plain, 0), pixels(store, quantised, 0))


def test_unsupported_precision_and_refiner_models_are_clear_errors(tiny_models, tmp_path) -> None:
    with pytest.raises(ValueError, match="class_images.base_model_precision 'nf4-bnb' is not supported"):
        class_image_plan(run_config(tiny_models, tmp_path, base_model_precision="nf4-bnb"))
    with pytest.raises(ValueError, match="refiner"):
        load_sampler(str(tiny_models["sdxl-refiner"]), "default")
    with pytest.raises(ValueError, match="multiples of 8"):
        run_config(tiny_models, tmp_path, resolutions=[60])


def test_sdxl_base_generates_at_its_native_size(tiny_models, tmp_path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    result = generate_class_images(
        store, run_config(tiny_models, tmp_path, model="sdxl", count=1, negative_prompt="blurry")
    ).result
    assert pixels(store, result, 0).shape == (64, 64, 3)
