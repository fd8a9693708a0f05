"""Turn CLIPSeg probabilities into a training mask: threshold, drop specks, pad, invert, feather.

Masks are numpy arrays [H, W]: boolean while binary, float32 in [0, 1] when finished.
1 (white) = train, 0 (black) = ignore, as in SimpleTuner's masked loss.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from dreamcore.config.options.generation import MaskGenerationOptions


@dataclass(frozen=True)
class FinishedMask:
    """A training mask and whether the prompt was found at all."""

    mask: np.ndarray  # [H, W] float32 in [0, 1]; 1 = train
    detected: bool  # False: nothing passed the threshold, so the mask is all white

    @property
    def coverage(self) -> float:
        """Fraction of the image that is trained (mean mask value)."""
        return mask_coverage(self.mask)


def threshold_mask(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask of the pixels whose probability reaches `threshold`."""
    return np.asarray(probabilities) >= threshold


def drop_small_regions(binary: np.ndarray, min_area_fraction: float) -> np.ndarray:
    """Remove 4-connected regions smaller than `min_area_fraction` of the whole grid."""
    binary = np.asarray(binary, dtype=bool)
    if min_area_fraction <= 0 or not binary.any():
        return binary.copy()
    min_pixels = min_area_fraction * binary.size
    kept = np.zeros_like(binary)
    for region in _regions(binary):
        if len(region[0]) >= min_pixels:
            kept[region] = True
    return kept


def pad_mask(binary: np.ndarray, padding_px: int) -> np.ndarray:
    """Grow a boolean mask by `padding_px` pixels in every direction (a square brush)."""
    grown = np.asarray(binary, dtype=bool)
    if padding_px <= 0:
        return grown.copy()
    # A square brush is separable: dilate the rows, then the columns.
    for axis in (0, 1):
        grown = _dilate_along(grown, padding_px, axis)
    return grown


def feather_mask(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """Soften a mask's edges with a Gaussian blur of radius `feather_px`; values stay in [0, 1]."""
    values = np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)
    if feather_px <= 0:
        return values
    # 8-bit blur: PIL's Gaussian is fast and clamps to 0..255, so the result cannot leave [0, 1].
    image = Image.fromarray(np.rint(values * 255).astype(np.uint8), mode="L")
    blurred = image.filter(ImageFilter.GaussianBlur(radius=feather_px))
    return np.asarray(blurred, dtype=np.float32) / 255.0


def invert_mask(mask: np.ndarray) -> np.ndarray:
    """Swap train and ignore: 1 - mask."""
    return 1.0 - np.asarray(mask, dtype=np.float32)


def mask_coverage(mask: np.ndarray) -> float:
    """Fraction of the image that is trained (mean mask value in [0, 1])."""
    return float(np.asarray(mask, dtype=np.float64).mean())


def finish_mask(probabilities: np.ndarray, size: tuple[int, int], options: MaskGenerationOptions) -> FinishedMask:
    """From CLIPSeg probabilities [h, w] (its own grid) to a mask of the image's (width, height)."""
    low = np.asarray(probabilities, dtype=np.float32)
    # Specks are judged on the model's grid (small, so the region search is cheap); the area
    # fraction does not depend on resolution.
    keep = drop_small_regions(threshold_mask(low, options.threshold), options.min_area_fraction)
    low = np.where(keep, low, 0.0).astype(np.float32)
    # Upsample probabilities, not the binary mask, so the edge follows the image smoothly.
    full = np.asarray(Image.fromarray(low, mode="F").resize(size, Image.Resampling.BILINEAR))
    binary = threshold_mask(full, options.threshold)
    if not binary.any():
        return FinishedMask(np.ones((size[1], size[0]), dtype=np.float32), detected=False)
    mask = pad_mask(binary, options.padding_px).astype(np.float32)
    if options.invert:
        mask = invert_mask(mask)
    return FinishedMask(feather_mask(mask, options.feather_px), detected=True)


def mask_to_image(mask: np.ndarray) -> Image.Image:
    """A grayscale ("L") image of a [0, 1] mask: white = train."""
    return Image.fromarray(np.rint(np.clip(mask, 0.0, 1.0) * 255).astype(np.uint8), mode="L")


def _dilate_along(binary: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """True where any pixel within `radius` along `axis` is True (window sums from a cumsum)."""
    length = binary.shape[axis]
    totals = np.cumsum(binary, axis=axis, dtype=np.int64)
    totals = np.concatenate([np.zeros_like(np.take(totals, [0], axis=axis)), totals], axis=axis)
    index = np.arange(length)
    upper = np.clip(index + radius + 1, 0, length)
    lower = np.clip(index - radius, 0, length)
    return (np.take(totals, upper, axis=axis) - np.take(totals, lower, axis=axis)) > 0


def _regions(binary: np.ndarray):
    """Yield each 4-connected True region as an index tuple (rows, cols)."""
    height, width = binary.shape
    seen = np.zeros_like(binary)
    for start_row, start_col in zip(*np.nonzero(binary)):
        if seen[start_row, start_col]:
            continue
        seen[start_row, start_col] = True
        rows, cols = [], []
        queue = deque([(int(start_row), int(start_col))])
        while queue:
            row, col = queue.popleft()
            rows.append(row)
            cols.append(col)
            for r, c in ((row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)):
                if 0 <= r < height and 0 <= c < width and binary[r, c] and not seen[r, c]:
                    seen[r, c] = True
                    queue.append((r, c))
        yield np.array(rows), np.array(cols)
