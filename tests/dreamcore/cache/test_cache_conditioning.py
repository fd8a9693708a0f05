"""Masks: paired by relative path, cropped exactly as their image, cached at latent resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamcore.cache.conditioning import MissingMaskError, crop_mask, mask_at_latent_size, pair_masks
from dreamcore.cache.parquet_io import get_tensor
from dreamcore.cache.shards import ShardedCache
from dreamcore.cache.vae import cache_vae_latents, read_index
from dreamcore.config import DatasetSpec
from dreamcore.data.buckets import BucketSettings, CropPlan, apply_plan, plan_crop
from dreamcore.data.images import load_rgb


def ok(path: str, digest: str = "d") -> dict:
    return {"path": path, "status": "ok", "reason": "", "digest": digest}


def marked_pair(width: int, height: int, seed: int) -> tuple[Image.Image, Image.Image]:
    """A noisy image with a pure-yellow rectangle, and the mask of exactly that rectangle."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 100, size=(height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), dtype=np.uint8)
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    bottom, right = top + rng.integers(8, height // 2), left + rng.integers(8, width // 2)
    pixels[top:bottom, left:right] = (255, 255, 0)
    mask[top:bottom, left:right] = 255
    return Image.fromarray(pixels), Image.fromarray(mask)


def test_masks_pair_by_relative_path_not_basename() -> None:
    images = [ok("anna/face.jpg"), ok("bob/face.jpg"), ok("bob/hands.png")]
    masks = [ok("anna/face.png"), ok("bob/hands.png"), {"path": "cat/face.png", "status": "rejected", "reason": "x"}]
    with pytest.raises(MissingMaskError) as error:
        pair_masks(images, masks, dataset_id="people", mask_dataset_id="people-masks", allow_missing=False)
    message = str(error.value)
    assert "1 image(s)" in message and "bob/face.jpg: no mask named bob/face.*" in message
    assert "anna/face.jpg" not in message and "allow_missing_masks" in message
    pairs = pair_masks(images, masks, dataset_id="people", mask_dataset_id="m", allow_missing=True)
    assert pairs == {"anna/face.jpg": masks[0], "bob/face.jpg": None, "bob/hands.png": masks[1]}
    with pytest.raises(ValueError, match="both pair with anna/face"):
        pair_masks(
            images, [ok("anna/face.png"), ok("anna/face.jpg")], dataset_id="p", mask_dataset_id="m", allow_missing=True
        )


@pytest.mark.parametrize("style", ["center", "random", "corner"])
def test_a_crop_without_resize_keeps_mask_and_image_aligned_pixel_for_pixel(style: str) -> None:
    image, mask = marked_pair(128, 64, seed=3)
    plan = plan_crop(128, 64, BucketSettings(resolution=64, crop=True, crop_style=style), "x")
    assert plan.resized_size == (128, 64)  # only a crop: no resampling can blur the comparison
    cropped_image = np.asarray(apply_plan(image, plan))
    cropped_mask = np.asarray(crop_mask(mask, plan, "x.png"))
    yellow = (cropped_image[..., 0] == 255) & (cropped_image[..., 2] == 0)
    assert np.array_equal(yellow, cropped_mask == 255)


@pytest.mark.parametrize("seed", range(4))
def test_resized_crops_keep_mask_and_image_aligned(seed: int) -> None:
    image, mask = marked_pair(150, 110, seed=seed)
    plan = plan_crop(
        150,
        110,
        BucketSettings(resolution=96, crop=True, crop_aspect="preserve", crop_style="random", alignment=32),
        str(seed),
    )
    cropped_image = np.asarray(apply_plan(image, plan)).astype(int)
    cropped_mask = np.asarray(crop_mask(mask, plan, "x.png")).astype(int)
    yellow = (cropped_image[..., 0] > 180) & (cropped_image[..., 1] > 180)
    masked = cropped_mask > 127
    assert masked.any() and not masked.all()
    # Only resampling at the rectangle's border may disagree; a mask off by 2 px disagrees more.
    agreement = (yellow == masked).mean()
    assert agreement > 0.98
    assert (yellow[:, 2:] == masked[:, :-2]).mean() < agreement


def test_cached_masks_are_the_crop_at_latent_resolution(cache_setup) -> None:
    outcome = cache_vae_latents(cache_setup.store, cache_setup.job())
    assert outcome.result.counts["masked"] == 8
    cache = ShardedCache(outcome.result.details["cache_uri"])
    for entry in read_index(cache_setup.store, outcome.result):
        row = {r["key"]: r for r in cache.read_shard(entry["shard"])}[entry["key"]]
        plan = CropPlan(
            (row["original_width"], row["original_height"]),
            (row["resized_width"], row["resized_height"]),
            row["crop_top"],
            row["crop_left"],
            (row["target_width"], row["target_height"]),
        )
        mask_file = Path(cache_setup.masks.instance_data_dir) / (Path(entry["path"]).stem + ".png")
        expected = mask_at_latent_size(
            crop_mask(load_rgb(mask_file.read_bytes()), plan, entry["path"]),
            (plan.target_size[0] // 2, plan.target_size[1] // 2),
        )
        cached = get_tensor(row, "mask").numpy()
        assert cached.shape == get_tensor(row, "latents").shape[1:]
        assert np.array_equal(cached, expected)
        assert 0 < cached.mean() < 255  # the subject is part of the picture, not all of it


def test_missing_masks_stop_the_stage_unless_white_masks_are_allowed(cache_setup) -> None:
    for path in cache_setup.demo.mask_paths[:3]:
        path.unlink()
    with pytest.raises(MissingMaskError) as error:
        cache_vae_latents(cache_setup.store, cache_setup.job())
    for path in cache_setup.demo.image_paths[:3]:
        assert path.name in str(error.value)
    allowing = cache_setup.masks.model_copy(update={"allow_missing_masks": True})
    outcome = cache_vae_latents(cache_setup.store, cache_setup.job(masks=allowing))
    assert outcome.result.counts["masked"] == 5
    cache = ShardedCache(outcome.result.details["cache_uri"])
    missing = {p.name for p in cache_setup.demo.image_paths[:3]}
    for entry in read_index(cache_setup.store, outcome.result):
        row = {r["key"]: r for r in cache.read_shard(entry["shard"])}[entry["key"]]
        all_white = bool((get_tensor(row, "mask") == 255).all())
        assert all_white == (entry["path"] in missing) and entry["masked"] == (entry["path"] not in missing)


def test_a_mask_of_another_size_is_an_error(tmp_path: Path) -> None:
    plan = plan_crop(100, 80, BucketSettings(resolution=64))
    with pytest.raises(ValueError, match="mask for a.png is 50x40 but the image is 100x80"):
        crop_mask(Image.new("L", (50, 40)), plan, "a.png")
    assert DatasetSpec(
        id="m", dataset_type="conditioning", conditioning_type="mask", instance_data_dir="/m", allow_missing_masks=True
    ).allow_missing_masks
