"""huggingface datasets, read offline with the datasets library: a save_to_disk folder, a Parquet file and
a hub-cache snapshot ingest with SimpleTuner's caption rules, a missing one is a clear error, and a
save_to_disk dataset trains the tiny SD model through ingest, caches and training."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dreamcore.config import DatasetSpec, RunConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.data.huggingface import DatasetNotLocalError, row_captions
from dreamcore.data.ingest import ingest_dataset, read_manifest, scan_dataset
from dreamcore.storage import ArtifactStore, StageResult

datasets = pytest.importorskip("datasets")


def _png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _rows() -> dict:
    """Three good images (one caption only in the fallback column) and one that is not an image."""
    return {
        "image": [{"bytes": _png((72, 64), (200, 10, 10)), "path": None},
                  {"bytes": _png((64, 80), (10, 200, 10)), "path": None},
                  {"bytes": _png((64, 64), (10, 10, 200)), "path": None},
                  {"bytes": b"not an image at all", "path": None}],
        "text": ["a red sks toy", "  a green   sks toy ", "", "broken"],
        "alt": ["", "", "a blue sks toy", ""],
    }


def _features():
    return datasets.Features({"image": datasets.Image(), "text": datasets.Value("string"),
                              "alt": datasets.Value("string")})


def _ingest(spec: DatasetSpec, root: Path) -> list[dict]:
    outcome = ingest_dataset(ArtifactStore(str(root)), scan_dataset(spec))
    return read_manifest(ArtifactStore(str(root)), outcome.result)


def _check_manifest(rows: list[dict]) -> None:
    by_path = {row["path"]: row for row in rows}
    assert sorted(by_path) == ["0.png", "1.png", "2.png", "3.jpg"]  # not an image: SimpleTuner's jpg name
    assert by_path["0.png"]["captions"] == ["a red sks toy"]
    assert by_path["1.png"]["captions"] == ["a green sks toy"]
    assert by_path["2.png"]["captions"] == ["a blue sks toy"]  # fallback_caption_column
    assert (by_path["0.png"]["width"], by_path["0.png"]["height"]) == (72, 64)
    assert by_path["3.jpg"]["status"] == "rejected" and "not an image" in by_path["3.jpg"]["reason"]


def test_a_save_to_disk_dataset_dict_ingests_the_named_split(tmp_path) -> None:
    train = datasets.Dataset.from_dict(_rows(), features=_features())
    other = datasets.Dataset.from_dict({k: v[:1] for k, v in _rows().items()}, features=_features())
    datasets.DatasetDict({"train": other, "holdout": train}).save_to_disk(str(tmp_path / "saved"))
    spec = DatasetSpec.model_validate({
        "id": "hf", "type": "huggingface", "dataset_name": str(tmp_path / "saved"), "split": "holdout",
        "huggingface": {"caption_column": "text", "fallback_caption_column": "alt"},
    })
    assert (spec.caption_strategy, spec.metadata_backend) == ("huggingface", "huggingface")
    _check_manifest(_ingest(spec, tmp_path / "store"))
    missing = spec.model_copy(update={"split": "validation"})
    with pytest.raises(ValueError, match="split 'validation' is not in .*splits: train, holdout"):
        scan_dataset(missing)


def test_a_parquet_file_ingests_and_a_changed_caption_re_ingests(tmp_path) -> None:
    table = datasets.Dataset.from_dict(_rows(), features=_features())
    table.to_parquet(str(tmp_path / "train.parquet"))
    spec = DatasetSpec.model_validate({
        "id": "hf", "type": "huggingface", "dataset_name": str(tmp_path / "train.parquet"),
        "caption_column": "text", "fallback_caption_column": "alt", "cache_dir": str(tmp_path / "hf-cache"),
    })
    store = tmp_path / "store"
    _check_manifest(_ingest(spec, store))
    assert ingest_dataset(ArtifactStore(str(store)), scan_dataset(spec)).decoded == 0  # unchanged: reused
    changed = _rows() | {"text": ["a crimson sks toy", "a green sks toy", "", "broken"]}
    datasets.Dataset.from_dict(changed, features=_features()).to_parquet(str(tmp_path / "train.parquet"))
    again = ingest_dataset(ArtifactStore(str(store)), scan_dataset(spec))
    assert again.decoded == 4
    assert read_manifest(ArtifactStore(str(store)), again.result)[0]["captions"] == ["a crimson sks toy"]


def test_a_hub_id_reads_the_local_hub_cache_and_a_missing_one_says_it_must_be_local(tmp_path, monkeypatch) -> None:
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    repo = cache / "datasets--someone--toys"
    snapshot = repo / "snapshots" / ("0" * 40) / "data"
    snapshot.mkdir(parents=True)
    datasets.Dataset.from_dict(_rows(), features=_features()).to_parquet(str(snapshot / "train-00000-of-00001.parquet"))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    spec = DatasetSpec.model_validate({
        "id": "hf", "type": "huggingface", "dataset_name": "someone/toys", "caption_column": "text",
        "fallback_caption_column": "alt", "cache_dir": str(tmp_path / "hf-cache"),
    })
    _check_manifest(_ingest(spec, tmp_path / "store"))
    absent = spec.model_copy(update={"dataset_name": "someone/not-here"})
    with pytest.raises(DatasetNotLocalError, match="'someone/not-here' is not on this machine and dreamcore downloads nothing"):
        scan_dataset(absent)


def test_a_missing_image_column_names_the_columns(tmp_path) -> None:
    datasets.Dataset.from_dict(_rows(), features=_features()).save_to_disk(str(tmp_path / "saved"))
    spec = DatasetSpec.model_validate({"id": "hf", "type": "huggingface", "dataset_name": str(tmp_path / "saved"),
                                       "image_column": "picture"})
    with pytest.raises(ValueError, match="image_column 'picture' is not a column .*columns: image, text, alt"):
        scan_dataset(spec)


@pytest.mark.parametrize(
    ("row", "columns", "fallback", "expected"),
    [
        ({"caption": "a toy"}, "caption", None, ["a toy"]),
        ({"meta": {"caption": "nested toy"}}, "meta.caption", None, ["nested toy"]),
        ({"short": "toy", "long": "a small sks toy", "tags": ""}, ["short", "long", "tags"], None,
         ["toy", "a small sks toy"]),
        ({"caption": "", "alt": "fallback toy"}, "caption", "alt", ["fallback toy"]),
        ({"caption": None, "description": {"main_subject": "toy", "text": "on a table"}}, "caption", None,
         ["toy on a table"]),
        ({"caption": "", "description": "described toy"}, "caption", None, ["described toy"]),
        ({"caption": ""}, "caption", None, []),
    ],
)
def test_captions_follow_simpletuners_column_rules(row, columns, fallback, expected) -> None:
    assert row_captions(row, columns, fallback, "description") == expected


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "needs dataset_name"),
        ({"dataset_name": "x", "streaming": True}, "streaming: true is not supported"),
        ({"dataset_name": "x", "huggingface": {"filter_func": {"min_width": 512}}}, "filter_func would choose"),
        ({"dataset_name": "x", "huggingface": {"composite_image_config": {"enabled": True}}}, "image grids"),
        ({"dataset_name": "x", "split_composite_images": True}, "image grids"),
        ({"dataset_name": "x", "caption_strategy": "textfile"}, "cannot read a huggingface dataset"),
        ({"dataset_name": "x", "metadata_backend": "discovery"}, "metadata_backend 'huggingface'"),
    ],
)
def test_huggingface_settings_we_do_not_follow_are_refused(entry, message) -> None:
    with pytest.raises(ValueError, match=message):
        DatasetSpec.model_validate({"id": "hf", "type": "huggingface", **entry})


def test_block_and_top_level_keys_resolve_as_simpletuner_reads_them() -> None:
    spec = DatasetSpec.model_validate({
        "id": "hf", "type": "huggingface", "dataset_name": "top/name", "caption_column": "top_caption",
        "huggingface": {"dataset_name": "block/name", "split": "test", "caption_column": "block_caption",
                        "num_proc": 4, "width_column": "w"},
    })
    assert (spec.dataset_name, spec.split, spec.caption_column, spec.num_proc) == ("top/name", "test", "block_caption", 4)
    with pytest.raises(ValueError, match="dataset_name is a key of huggingface datasets"):
        DatasetSpec.model_validate({"id": "x", "instance_data_dir": "/data", "dataset_name": "a/b"})


@pytest.mark.usefixtures("one_torch_thread")
def test_a_huggingface_dataset_trains_the_tiny_model(tmp_path, tiny_models) -> None:
    from dreamcore.pipeline import run_ingest, run_train

    demo = write_demo_dataset(tmp_path / "demo", n_images=4, include_masks=False)
    images = sorted(demo.images_dir.glob("*.png")) + sorted(demo.images_dir.glob("*.jpg"))
    rows = {"image": [{"bytes": p.read_bytes(), "path": None} for p in images],
            "text": [p.with_suffix(".txt").read_text().strip() for p in images]}
    features = datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")})
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "toys"))
    root = str(tmp_path / "artifacts")
    config = RunConfig.model_validate({"training": {
        "pretrained_model_name_or_path": str(tiny_models["sd"]), "model_family": "sd1x", "mixed_precision": "no",
        "storage_root": root, "max_train_steps": 2, "checkpointing_steps": 2, "train_batch_size": 2, "lora_rank": 4,
        "learning_rate": 1e-2, "optimizer": "adamw"},
        "datasets": [{"id": "toys", "type": "huggingface", "dataset_name": str(tmp_path / "toys"),
                      "caption_column": "text", "resolution": 64, "crop": True, "crop_aspect": "square"}]})
    store = ArtifactStore(root)
    ingested = run_ingest(config, store)["toys"]
    assert ingested["counts"] == {"accepted": len(images), "rejected": 0}
    manifest = read_manifest(store, StageResult.model_validate(ingested))
    assert sorted(c for row in manifest for c in row["captions"]) == sorted(rows["text"])
    trained = StageResult.model_validate(run_train(config, store)["train"])
    assert store.exists(f"train/{trained.key}/export/diffusers/pytorch_lora_weights.safetensors")
    assert trained.counts["steps"] == 2 and trained.details["upstream"]["vae_cache/toys"]
