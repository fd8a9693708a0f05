"""Crop and bucket math: properties over random sizes and settings, and SimpleTuner's worked examples."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dreamcore.config import DatasetSpec
from dreamcore.data.buckets import (
    BucketSettings,
    align,
    apply_plan,
    bucket_size,
    plan_crop,
    size_in_units,
    target_area,
)

sizes = st.integers(min_value=16, max_value=3000)
alignments = st.sampled_from([8, 16, 32, 64])


@st.composite
def bucket_settings(draw, crop=None):
    kind = draw(st.sampled_from(["pixel", "area", "pixel_area"]))
    resolution = draw(st.floats(0.05, 2.0)) if kind == "area" else draw(st.integers(64, 1024))
    use_crop = draw(st.booleans()) if crop is None else crop
    aspect = draw(st.sampled_from(["square", "preserve", "random", "closest"]))
    buckets = tuple((a, 1.0) for a in draw(st.lists(st.floats(0.3, 3.0), min_size=1, max_size=4)))
    return BucketSettings(
        resolution=resolution,
        resolution_type=kind,
        crop=use_crop,
        crop_aspect=aspect,
        crop_style=draw(st.sampled_from(["center", "random", "corner"])),
        crop_aspect_buckets=buckets,
        alignment=draw(alignments),
    )


@given(width=sizes, height=sizes, config=bucket_settings(), material=st.text(max_size=8))
@settings(max_examples=300, deadline=None)
def test_every_plan_is_an_aligned_crop_inside_an_aspect_true_resize(width, height, config, material) -> None:
    plan = plan_crop(width, height, config, material)
    target_w, target_h = plan.target_size
    resized_w, resized_h = plan.resized_size
    assert target_w % config.alignment == 0 and target_h % config.alignment == 0
    assert target_w >= config.alignment and target_h >= config.alignment
    left, top, right, bottom = plan.crop_box
    assert 0 <= left and 0 <= top and right <= resized_w and bottom <= resized_h
    # The resize keeps the image's aspect (up to rounding one pixel per edge).
    if plan.resized_size != plan.original_size:
        scale = max(target_w / width, target_h / height)
        if config.crop and config.maximum_image_size:
            scale = resized_w / width
        assert abs(resized_w - width * scale) <= 1.0 and abs(resized_h - height * scale) <= 1.0
    assert plan == plan_crop(width, height, config, material)  # deterministic


@given(width=sizes, height=sizes, config=bucket_settings(crop=False))
@settings(max_examples=300, deadline=None)
def test_without_crop_only_the_alignment_remainder_is_cut(width, height, config) -> None:
    plan = plan_crop(width, height, config)
    aspect = width / height
    trimmed_w = plan.resized_size[0] - plan.target_size[0]
    trimmed_h = plan.resized_size[1] - plan.target_size[1]
    assert min(trimmed_w, trimmed_h) <= 1  # the resize just covers the bucket
    assert trimmed_w <= (aspect + 1) * config.alignment / 2 + 1
    assert trimmed_h <= (1 / aspect + 1) * config.alignment / 2 + 1


@given(width=sizes, height=sizes, resolution=st.integers(64, 1024), alignment=alignments)
@settings(max_examples=200, deadline=None)
def test_pixel_resolution_is_the_shorter_edge(width, height, resolution, alignment) -> None:
    plan = plan_crop(width, height, BucketSettings(resolution=resolution, resolution_type="pixel", alignment=alignment))
    assert min(plan.target_size) == align(resolution, alignment)
    if plan.target_size[0] != plan.target_size[1]:  # never flips the image's orientation
        assert (plan.target_size[0] > plan.target_size[1]) == (width > height)


@given(aspect=st.floats(0.5, 2.0), resolution=st.sampled_from([256, 512, 768, 1024]))
def test_area_buckets_hold_about_the_requested_area(aspect, resolution) -> None:
    width, height = bucket_size(aspect, BucketSettings(resolution=resolution, resolution_type="pixel_area"))
    ideal_w, ideal_h = math.sqrt(resolution**2 * aspect), math.sqrt(resolution**2 / aspect)
    # Each edge is within half an alignment step of its ideal length, so the area is within that.
    slack = (1 + 32 / ideal_w) * (1 + 32 / ideal_h) - 1
    assert abs(width * height / resolution**2 - 1) <= slack
    assert abs(width - ideal_w) <= 32 and abs(height - ideal_h) <= 32
    assert abs(width / height - aspect) <= 64 / min(width, height) * (1 + aspect)


def test_simpletuner_area_values_and_units() -> None:
    assert target_area(1.0, "area") == 1024**2 and target_area(0.25, "area") == 512**2
    assert target_area(0.3, "area") == pytest.approx(300_000)
    assert target_area(512, "pixel_area") == 512**2
    square = {"resolution_type": "area", "crop": True, "crop_aspect": "square"}
    assert plan_crop(3000, 2000, BucketSettings(resolution=1.0, **square)).target_size == (1024, 1024)
    assert plan_crop(3000, 2000, BucketSettings(resolution=0.5, **square)).target_size == (768, 768)
    assert size_in_units(1000, 500, "pixel") == 500
    assert size_in_units(1000, 500, "area") == 0.5
    assert size_in_units(1000, 250, "pixel_area") == 500


def test_landscape_photo_at_512_pixel() -> None:
    plan = plan_crop(1024, 768, BucketSettings(resolution=512, crop_style="center"))
    assert plan.target_size == (704, 512)  # 512 * 4/3 = 682.7 -> 704
    assert plan.resized_size == (704, 528)
    assert (plan.crop_top, plan.crop_left) == (8, 0)


def test_small_image_is_upsampled_to_the_bucket() -> None:
    plan = plan_crop(80, 80, BucketSettings(resolution=128))
    assert plan.resized_size == plan.target_size == (128, 128)


def test_square_crop_styles() -> None:
    base = {"resolution": 64, "crop": True, "crop_aspect": "square"}
    center = plan_crop(160, 120, BucketSettings(crop_style="center", **base))
    assert center.target_size == (64, 64) and center.resized_size == (85, 64)
    assert (center.crop_top, center.crop_left) == (0, 10)
    corner = plan_crop(160, 120, BucketSettings(crop_style="corner", **base))
    assert (corner.crop_top, corner.crop_left) == (0, 21)  # bottom-right, as SimpleTuner
    lefts = {
        plan_crop(160, 120, BucketSettings(crop_style="random", **base), f"image-{i}").crop_left for i in range(40)
    }
    assert len(lefts) > 5 and min(lefts) >= 0 and max(lefts) <= 21


def test_maximum_size_downsamples_to_target_before_the_crop() -> None:
    base = {"resolution": 512, "crop": True, "crop_aspect": "square", "crop_style": "center"}
    plain = plan_crop(2048, 1536, BucketSettings(**base))
    assert plain.resized_size == (683, 512)
    limited = plan_crop(2048, 1536, BucketSettings(maximum_image_size=1024, target_downsample_size=768, **base))
    assert limited.resized_size == (1024, 768)  # cropped from the larger image: more detail kept
    assert limited.target_size == (512, 512) and (limited.crop_top, limited.crop_left) == (128, 256)
    below = plan_crop(1000, 900, BucketSettings(maximum_image_size=1024, target_downsample_size=768, **base))
    assert below.resized_size == (569, 512)  # not above the maximum: no downsample


def test_closest_and_random_aspects_come_from_the_bucket_list() -> None:
    spec = DatasetSpec(
        id="d",
        instance_data_dir="/x",
        crop=True,
        crop_aspect="closest",
        resolution=512,
        resolution_type="pixel_area",
        crop_aspect_buckets=[0.75, 1.0, 1.5],
    )
    closest = BucketSettings.from_spec(spec)
    assert plan_crop(1600, 1000, closest).target_size == bucket_size(1.5, closest)
    assert plan_crop(1000, 1300, closest).target_size == bucket_size(0.75, closest)
    weighted = DatasetSpec(
        id="d",
        instance_data_dir="/x",
        crop=True,
        crop_aspect="random",
        resolution=512,
        resolution_type="pixel_area",
        crop_aspect_buckets=[{"aspect": 1.0, "weight": 3}, {"aspect": 1.5, "weight": 1}],
    )
    chosen = Counter(plan_crop(900, 900, BucketSettings.from_spec(weighted), f"img{i}").target_size for i in range(400))
    assert set(chosen) == {bucket_size(1.0, closest), bucket_size(1.5, closest)}
    assert 0.65 < chosen[bucket_size(1.0, closest)] / 400 < 0.85


def test_face_crop_and_missing_aspect_buckets_are_config_errors() -> None:
    with pytest.raises(ValueError, match="crop_style 'face' is not supported"):
        DatasetSpec(id="d", instance_data_dir="/x", crop=True, crop_style="face")
    with pytest.raises(ValueError, match="crop_aspect 'random' needs crop_aspect_buckets"):
        DatasetSpec(id="d", instance_data_dir="/x", crop=True, crop_aspect="random")
    with pytest.raises(ValueError, match="not supported"):
        plan_crop(100, 100, BucketSettings(resolution=64, crop=True, crop_style="face"))


def test_apply_plan_resizes_then_crops_exactly() -> None:
    rng = random.Random(0)
    image = Image.new("RGB", (150, 100))
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(150 * 100)])
    plan = plan_crop(150, 100, BucketSettings(resolution=64, crop=True, crop_style="random"), "seed")
    out = apply_plan(image, plan)
    expected = image.resize(plan.resized_size, Image.Resampling.LANCZOS).crop(plan.crop_box)
    assert out.size == plan.target_size and list(out.getdata()) == list(expected.getdata())
    with pytest.raises(ValueError, match="plan is for"):
        apply_plan(image.resize((10, 10)), plan)
    assert math.isclose(plan.resized_size[0] / plan.resized_size[1], 1.5, rel_tol=0.02)
