"""An edit model's reference images (conditioning_type reference_strict / reference_loose) on the tiny Flux Kontext:
paired with their edit image by relative path without extension, cached as VAE rows of their own, handed to training
in each batch; a missing reference is an error naming the file, before training."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageOps

from dreamcore.cache.batches import open_batch_source
from dreamcore.cache.conditioning import MissingReferenceError
from dreamcore.cache.stages import run_cache
from dreamcore.config import RunConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.data.preflight import preflight_problems
from dreamcore.pipeline import run_ingest
from dreamcore.storage import ArtifactStore, StageResult


def _same_pixels_as_png(images: Path, folder: Path, swap: tuple[str, str] | None = None) -> Path:
    """Each image upright as a PNG (other bytes, the same pixels) under its own stem; `swap`: two stems whose
    references trade places."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {p.stem: p for p in sorted(images.iterdir()) if p.suffix in (".png", ".jpg")}
    for stem, path in paths.items():
        source = paths[dict([swap, swap[::-1]]).get(stem, stem)] if swap else path
        with Image.open(source) as image:
            ImageOps.exif_transpose(image).convert("RGB").save(folder / f"{stem}.png", compress_level=1)
    return folder


def _project(tmp_path: Path, model: str, references: Path, kind: str = "reference_strict") -> RunConfig:
    demo = write_demo_dataset(tmp_path / "data", n_images=4, include_masks=False)
    size = {"resolution": 64, "resolution_type": "pixel", "crop": True, "crop_aspect": "preserve",
            "crop_style": "random"}
    return RunConfig.model_validate({
        "training": {"model_family": "flux", "pretrained_model_name_or_path": model, "tokenizer_max_length": 64,
                     "train_batch_size": 1, "max_train_steps": 2, "storage_root": str(tmp_path / "artifacts"),
                     "validation_disable": True},
        "datasets": [
            {"id": "edits", "instance_data_dir": str(demo.images_dir), "caption_strategy": "textfile",
             "conditioning_data": ["refs"], **size},
            {"id": "refs", "instance_data_dir": str(references), "conditioning_type": kind, "caption_strategy": None,
             **size, "resolution": 128},
            {"id": "text", "dataset_type": "text_embeds", "default": True},
        ],
    })


def _cached(config: RunConfig):
    store = ArtifactStore(config.training.resolved_storage_root)
    run_ingest(config, store)
    caches = run_cache(config, store)
    vae = {i: StageResult.model_validate(r) for i, r in caches["vae_cache"].items()}
    return open_batch_source(store, config, vae, StageResult.model_validate(caches["text_cache"]))


def _batches(source, count: int = 4) -> dict[str, object]:
    """path -> its first batch (batch size 1)."""
    found = {}
    for _ in range(count * 3):
        batch = source.next_batch()
        found.setdefault(batch.paths[0], batch)
    return found


@pytest.fixture
def demo_images(tmp_path: Path) -> Path:
    return write_demo_dataset(tmp_path / "data", n_images=4, include_masks=False).images_dir


def test_strict_references_are_cropped_as_their_edit_and_a_step_sees_its_own(tmp_path, tiny_models, demo_images):
    import torch

    from dreamcore.models import family_named
    from dreamcore.models.families.denoisers import Conditioning

    model = str(tiny_models["kontext"])
    config = _project(tmp_path / "a", model, _same_pixels_as_png(demo_images, tmp_path / "refs"))
    batches = _batches(_cached(config))
    assert len(batches) == 4
    # The same pixels resized and cropped with the edit's own (random) crop box: exactly the edit's latents.
    for batch in batches.values():
        assert len(batch.reference) == 1 and torch.equal(batch.reference[0], batch.latents)

    swapped = _project(tmp_path / "b", model, _same_pixels_as_png(demo_images, tmp_path / "swapped",
                                                                  swap=("toy_00", "toy_02")))
    after = _batches(_cached(swapped))
    assert torch.equal(after["toy_01.jpg"].reference[0], after["toy_01.jpg"].latents)
    assert not torch.equal(after["toy_00.png"].reference[0], after["toy_00.png"].latents)

    # A training step's loss depends on the paired reference: the swapped one changes it.
    from diffusers import FluxTransformer2DModel

    transformer = FluxTransformer2DModel.from_pretrained(model, subfolder="transformer")
    family = family_named("kontext")

    def loss(batch) -> float:
        noise = torch.randn(batch.latents.shape, generator=torch.Generator().manual_seed(0))
        noisy = 0.5 * batch.latents + 0.5 * noise
        conditioning = Conditioning(batch.prompt_embeds, batch.pooled_prompt_embeds, guidance=torch.tensor([3.5]),
                                    reference=batch.reference)
        with torch.no_grad():
            prediction = family.predict(transformer, noisy, torch.tensor([500.0]), conditioning)
        return float(((prediction - (noise - batch.latents)) ** 2).mean())

    assert loss(after["toy_01.jpg"]) == loss(batches["toy_01.jpg"])
    assert loss(after["toy_00.png"]) != loss(batches["toy_00.png"])


def test_loose_references_are_bucketed_on_their_own_and_gc_keeps_their_shards(tmp_path, tiny_models, demo_images):
    from dreamcore.cache.results import VaeCacheDetails
    from dreamcore.cache.vae import read_index
    from dreamcore.gc.plan import _shard_column

    config = _project(tmp_path, str(tiny_models["kontext"]), _same_pixels_as_png(demo_images, tmp_path / "refs"),
                      kind="reference_loose")
    for batch in _batches(_cached(config)).values():
        # The reference dataset's own resolution (128 px): not the edit's 64 px bucket.
        assert batch.reference[0].shape[-2:] != batch.latents.shape[-2:]
    # Their rows sit in shards of their own (another bucket): gc counts them as the index's.
    store = ArtifactStore(config.training.resolved_storage_root)
    marker = next(Path(config.training.resolved_storage_root, "vae_cache").glob("*/_SUCCESS.json"))
    result = StageResult.model_validate_json(marker.read_text())
    rows = read_index(store, result)
    references = {shard for row in rows for shard in row["reference_shards"]}
    assert references - {row["shard"] for row in rows}
    assert _shard_column(store, VaeCacheDetails.of(result).index) == references | {row["shard"] for row in rows}


def test_a_missing_reference_is_an_error_naming_the_file_before_training(tmp_path, tiny_models, demo_images):
    references = _same_pixels_as_png(demo_images, tmp_path / "refs")
    (references / "toy_02.png").unlink()
    config = _project(tmp_path, str(tiny_models["kontext"]), references)
    problems = preflight_problems(config, "config.json")
    assert [(p.key, p.dataset_id) for p in problems] == [("conditioning_data", "edits")]
    assert "toy_02.png" in problems[0].message and "'refs'" in problems[0].message
    with pytest.raises(MissingReferenceError, match=r"toy_02\.png: no reference named toy_02\.\* in the reference"):
        _cached(config)


def test_references_need_an_edit_model(tmp_path, tiny_models, demo_images):
    config = _project(tmp_path, str(tiny_models["flux"]), _same_pixels_as_png(demo_images, tmp_path / "refs"))
    with pytest.raises(ValueError, match="'edits' pairs reference images .* not an edit model"):
        _cached(config)
