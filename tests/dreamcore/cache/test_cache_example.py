"""The seed doc's four-dataset Dreambooth example (tests/fixtures/simpletuner/examples), end to end through ingest, both caches and the BatchSource.

The example file is used as shipped with two changes: its /training paths move under tmp_path, and
every pixel size is divided by 8 (512 -> 64, 1024 -> 128, 192 -> 24, 768 -> 96) so the tiny VAE,
whose 2x latent grid keeps attention at full size, fits a CPU test. Everything else is verbatim.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamcore.cache.batches import open_batch_source
from dreamcore.cache.stages import run_cache
from dreamcore.config import load_run_config
from dreamcore.pipeline import run_ingest
from dreamcore.storage import ArtifactStore, StageResult

EXAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "simpletuner" / "examples" / "multidatabackend-dreambooth.json"
SIZE_KEYS = ("resolution", "minimum_image_size")
# Subject photos of mixed sizes: 64x64 passes the 24 px (192/8) minimum but not the 96 px (768/8) one.
SUBJECT_SIZES = ((160, 120), (100, 100), (96, 128), (144, 96), (64, 64))


def relocated_example(tmp_path: Path) -> Path:
    datasets = json.loads(EXAMPLE.read_text().replace('"/training/', f'"{tmp_path}/training/'))
    for entry in datasets:
        for key in SIZE_KEYS:
            if key in entry:
                entry[key] = entry[key] // 8
    target = tmp_path / "multidatabackend.json"
    target.write_text(json.dumps(datasets, indent=2))
    return target


def write_images(folder: Path, sizes, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for number, (width, height) in enumerate(sizes):
        pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"photo_{number:02d}.png")


@pytest.fixture(scope="module")
def example_run(tmp_path_factory, tiny_models):
    tmp_path = tmp_path_factory.mktemp("four-datasets")
    write_images(tmp_path / "training/datasets/subjectname", SUBJECT_SIZES, seed=1)
    write_images(tmp_path / "training/datasets/regularisation", [(128, 128)] * 3 + [(120, 160)] * 3, seed=2)
    config_file = tmp_path / "config.json"
    config_file.write_text(
        json.dumps(
            {
                "--model_family": "sdxl",
                "--pretrained_model_name_or_path": str(tiny_models["sdxl"]),
                "--train_batch_size": 2,
                "--storage_root": str(tmp_path / "artifacts"),
                "--data_backend_config": str(relocated_example(tmp_path)),
            }
        )
    )
    config = load_run_config(config_file)
    store = ArtifactStore(config.training.resolved_storage_root)
    ingested = run_ingest(config, store)
    return tmp_path, config, store, ingested, run_cache(config, store)


def test_every_dataset_is_cached_in_its_own_location(example_run) -> None:
    tmp_path, _config, _store, ingested, out = example_run
    assert ingested["subjectname-data-512px"]["counts"] == {"accepted": 5, "rejected": 0}
    assert ingested["subjectname-data-1024px"]["counts"] == {"accepted": 4, "rejected": 1}
    expected_dirs = {
        "subjectname-data-512px": "vae_cache/subjectname",
        "subjectname-data-1024px": "vae_cache/subjectname-1024px",
        "regularisation-data": "vae_cache/regularisation",
        "regularisation-data-1024px": "vae_cache/regularisation-1024px",
    }
    assert set(out["vae_cache"]) == set(expected_dirs)
    for dataset_id, folder in expected_dirs.items():
        result = out["vae_cache"][dataset_id]
        assert result["details"]["cache_uri"] == str(tmp_path / "training" / folder)
        assert len(list((tmp_path / "training" / folder / "shards").glob("*.parquet"))) == result["counts"]["shards"]
        assert result["encoded"] == result["counts"]["images"]
    # pixel_area with 64 px alignment: at 64² and 128² px every photo here rounds to a square bucket.
    assert out["vae_cache"]["subjectname-data-512px"]["details"]["buckets"] == {"64x64": 5}
    assert out["vae_cache"]["subjectname-data-1024px"]["details"]["buckets"] == {"128x128": 4}
    text = out["text_cache"]
    assert text["details"]["cache_uri"] == str(tmp_path / "training/text_cache/sdxl_base")
    assert text["counts"]["captions"] == 2  # "subjectname" and "a picture of a man"


def test_second_run_encodes_nothing(example_run) -> None:
    _, config, store, _, _ = example_run
    again = run_cache(config, store)
    assert {k: v["encoded"] for k, v in again["vae_cache"].items()} == dict.fromkeys(again["vae_cache"], 0)
    assert again["text_cache"]["encoded"] == 0


def test_training_batches_mix_all_four_datasets_at_both_sizes(example_run) -> None:
    _, config, store, _, out = example_run
    vae = {k: StageResult.model_validate(v) for k, v in out["vae_cache"].items()}
    source = open_batch_source(store, config, vae, StageResult.model_validate(out["text_cache"]))
    report = source.report()
    # repeats 100 on the subject: 5 and 4 images x 101 against 6 regularisation images per size.
    assert report["subjectname-data-512px"]["share"] == pytest.approx(505 / (505 + 404 + 6 + 6))
    shapes: dict[str, set] = {}
    for _ in range(30):
        batch = source.next_batch()
        shapes.setdefault(batch.dataset_ids[0], set()).add(tuple(batch.latents.shape[-2:]))
        assert batch.time_ids.shape == (batch.size, 6)
        assert batch.is_regularisation.all() == batch.dataset_ids[0].startswith("regularisation")
    assert shapes["subjectname-data-512px"] == {(32, 32)}
    assert max(h * w for h, w in shapes["subjectname-data-1024px"]) >= 64 * 64
    drawn = Counter(source.sampler.next_batch().dataset_id for _ in range(3000))
    assert set(drawn) == set(vae)
    assert drawn["subjectname-data-512px"] / 3000 == pytest.approx(report["subjectname-data-512px"]["share"], abs=0.03)
