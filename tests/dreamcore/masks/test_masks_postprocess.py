"""Mask post-processing on synthetic masks: exact padding growth, invert, feathering, specks, fallback."""

from __future__ import annotations

import numpy as np
import pytest

from dreamcore.config.options.generation import MaskGenerationOptions
from dreamcore.masks.postprocess import (
    drop_small_regions,
    feather_mask,
    finish_mask,
    invert_mask,
    mask_coverage,
    pad_mask,
)


def square(canvas: int, top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((canvas, canvas), dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def options(**overrides) -> MaskGenerationOptions:
    return MaskGenerationOptions(dataset="subject", prompt="toy", model="unused", **overrides)


@pytest.mark.parametrize("padding", [1, 3, 7])
def test_padding_grows_a_square_by_exactly_the_padding_on_every_side(padding: int) -> None:
    mask = square(64, 20, 24, 10)
    grown = pad_mask(mask, padding)
    side = 10 + 2 * padding
    assert grown.sum() == side * side
    assert mask_coverage(grown) - mask_coverage(mask) == pytest.approx((side * side - 100) / 64**2)
    rows, cols = np.nonzero(grown)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (20 - padding, 29 + padding, 24 - padding, 33 + padding)


def test_padding_stops_at_the_image_border_and_zero_padding_changes_nothing() -> None:
    corner = square(32, 0, 0, 5)
    assert pad_mask(corner, 4).sum() == 9 * 9  # grows only down and right
    assert np.array_equal(pad_mask(corner, 0), corner)


def test_invert_swaps_train_and_ignore() -> None:
    mask = square(16, 4, 4, 8).astype(np.float32)
    inverted = invert_mask(mask)
    assert np.array_equal(inverted, 1.0 - mask)
    assert mask_coverage(inverted) == pytest.approx(1 - 64 / 256)


def test_finish_mask_with_invert_is_the_complement() -> None:
    probabilities = np.zeros((32, 32), dtype=np.float32)
    probabilities[8:24, 8:24] = 0.9
    plain = finish_mask(probabilities, (32, 32), options(padding_px=0, feather_px=0))
    inverted = finish_mask(probabilities, (32, 32), options(padding_px=0, feather_px=0, invert=True))
    assert plain.detected and inverted.detected
    assert np.array_equal(inverted.mask, 1.0 - plain.mask)
    assert set(np.unique(plain.mask)) == {0.0, 1.0}


@pytest.mark.parametrize("radius", [0.5, 2.0, 6.0])
def test_feather_keeps_values_in_unit_range_and_softens_the_edge(radius: float) -> None:
    mask = square(96, 28, 28, 40).astype(np.float32)
    feathered = feather_mask(mask, radius)
    assert feathered.dtype == np.float32
    assert feathered.min() >= 0.0 and feathered.max() <= 1.0
    soft = (feathered > 0.02) & (feathered < 0.98)
    assert soft.any()  # an actual soft edge, not the hard mask
    assert feathered[48, 48] == pytest.approx(1.0)  # the centre stays fully trained
    assert mask_coverage(feathered) == pytest.approx(mask_coverage(mask), abs=0.01)


def test_feather_zero_is_the_identity() -> None:
    mask = square(16, 2, 2, 6).astype(np.float32)
    assert np.array_equal(feather_mask(mask, 0), mask)


def test_small_regions_are_dropped_and_large_ones_kept() -> None:
    mask = square(64, 10, 10, 20)  # 400 px = 9.8 %
    mask[50:52, 50:52] = True  # a 4 px speck = 0.1 %
    kept = drop_small_regions(mask, 0.01)
    assert kept.sum() == 400 and not kept[50:52, 50:52].any()
    assert drop_small_regions(mask, 0.0).sum() == 404


def test_nothing_detected_gives_an_all_white_mask_of_the_image_size() -> None:
    probabilities = np.full((32, 32), 0.1, dtype=np.float32)
    finished = finish_mask(probabilities, (80, 60), options(threshold=0.5))
    assert not finished.detected
    assert finished.mask.shape == (60, 80)
    assert finished.coverage == 1.0


def test_finish_mask_upsamples_to_the_image_and_pads_there() -> None:
    probabilities = np.zeros((32, 32), dtype=np.float32)
    probabilities[8:24, 8:24] = 1.0
    unpadded = finish_mask(probabilities, (128, 128), options(padding_px=0, feather_px=0))
    padded = finish_mask(probabilities, (128, 128), options(padding_px=5, feather_px=0))
    assert unpadded.mask.shape == (128, 128)
    assert 0.2 < unpadded.coverage < 0.3  # the middle half of each edge, about a quarter
    assert np.array_equal(padded.mask, pad_mask(unpadded.mask.astype(bool), 5).astype(np.float32))
    assert padded.coverage > unpadded.coverage
