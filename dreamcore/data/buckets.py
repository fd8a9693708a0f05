"""Resolution, crop and aspect-bucket math, with SimpleTuner's meanings.

- resolution_type "pixel": `resolution` is the shorter edge in px; "area": megapixels (SimpleTuner's
  round values 0.25/0.5/1/2/4 mean 512²/768²/1024²/1536²/2048² px); "pixel_area": an edge length
  whose square is the area.
- A bucket is the training size (width, height), each edge a multiple of the alignment (64 px by
  default). crop false: the bucket follows the image's aspect and the whole image is resized to
  cover it (only the alignment remainder is cut). crop true: the bucket's aspect comes from
  crop_aspect (square, preserve, closest / random from crop_aspect_buckets) and a crop of that
  size is taken at crop_style (center, random, corner = bottom-right, as SimpleTuner).
- Images smaller than the bucket (but above minimum_image_size, checked at ingest) are upsampled.
  With crop true, an image above maximum_image_size is first downsampled to
  target_downsample_size, so the crop keeps more scene detail than a resize to the bucket would.

Random choices (crop position, random aspect) are seeded by the image's digest, so one image always
gets the same crop: that is what lets a latent cache row be reused.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from dreamcore.config.datasets import bucket_fields_of

if TYPE_CHECKING:
    from PIL import Image

    from dreamcore.config import DatasetSpec

# SimpleTuner maps these megapixel values to the familiar square sizes.
_ROUND_AREAS = {0.25: 512**2, 0.5: 768**2, 1.0: 1024**2, 2.0: 1536**2, 4.0: 2048**2}
CROP_STYLES = ("center", "centre", "random", "corner")


@dataclass(frozen=True)
class BucketSettings:
    """The dataset fields that decide an image's crop and bucket (config's BUCKET_FIELDS), plus the alignment."""

    resolution: float
    resolution_type: str = "pixel"
    crop: bool = False
    crop_aspect: str = "square"
    crop_style: str = "random"
    crop_aspect_buckets: tuple[tuple[float, float], ...] = ()  # (aspect, weight)
    maximum_image_size: float | None = None
    target_downsample_size: float | None = None
    alignment: int = 64

    @classmethod
    def from_spec(cls, spec: DatasetSpec, alignment: int = 64) -> BucketSettings:
        """Read the settings of one dataset: every field of config's BUCKET_FIELDS."""
        fields = bucket_fields_of(spec)
        fields["crop_aspect_buckets"] = tuple(
            (float(b), 1.0) if isinstance(b, (int, float)) else (float(b["aspect"]), float(b["weight"]))
            for b in fields["crop_aspect_buckets"] or ()
        )
        return cls(**fields, alignment=alignment)

    def as_dict(self) -> dict:
        """JSON-able form (part of cache keys)."""
        return asdict(self)


@dataclass(frozen=True)
class CropPlan:
    """How one image becomes a training sample: resize to `resized_size`, then crop `target_size`.

    Sizes are (width, height) in px; the crop's top-left is in the resized image's pixels, which
    is what SDXL's time ids (original size, crop top-left, target size) expect.
    """

    original_size: tuple[int, int]
    resized_size: tuple[int, int]
    crop_top: int
    crop_left: int
    target_size: tuple[int, int]

    @property
    def bucket(self) -> str:
        """The bucket's name, "WxH"."""
        return f"{self.target_size[0]}x{self.target_size[1]}"

    @property
    def crop_box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the crop in the resized image."""
        width, height = self.target_size
        return (self.crop_left, self.crop_top, self.crop_left + width, self.crop_top + height)


def target_area(resolution: float, resolution_type: str) -> float:
    """The bucket area in px² that `resolution` asks for (area types; "pixel" squares the edge)."""
    if resolution_type == "area":
        return float(_ROUND_AREAS.get(resolution, resolution * 1e6))
    if resolution_type in ("pixel", "pixel_area"):
        return float(resolution) ** 2
    raise ValueError(f"resolution_type {resolution_type!r} is not one of pixel, area, pixel_area")


def size_in_units(width: int, height: int, resolution_type: str) -> float:
    """An image's size in the units of resolution_type: shorter edge, megapixels, or sqrt(area)."""
    if resolution_type == "pixel":
        return float(min(width, height))
    if resolution_type == "area":
        return width * height / 1e6
    return math.sqrt(width * height)


def align(value: float, alignment: int) -> int:
    """Nearest multiple of `alignment` (halves round up), never below one alignment step."""
    return max(alignment, math.floor(value / alignment + 0.5) * alignment)


def bucket_size(aspect: float, settings: BucketSettings) -> tuple[int, int]:
    """(width, height) of the bucket for a width/height `aspect`."""
    if settings.resolution_type == "pixel":
        shorter = float(settings.resolution)
        width, height = (shorter * aspect, shorter) if aspect >= 1 else (shorter, shorter / aspect)
    else:
        area = target_area(settings.resolution, settings.resolution_type)
        width, height = math.sqrt(area * aspect), math.sqrt(area / aspect)
    step = settings.alignment
    # An edge that would round to nothing is raised to one step; the other edge then follows the
    # aspect, so a very narrow image keeps its shape instead of losing most of its length to the crop.
    if width < step / 2:
        return step, align(step / aspect, step)
    if height < step / 2:
        return align(step * aspect, step), step
    return align(width, step), align(height, step)


def scale_to_cover(width: int, height: int, target: tuple[int, int]) -> tuple[int, int]:
    """The image size, aspect kept, that just covers `target` (upsampling when smaller)."""
    scale = max(target[0] / width, target[1] / height)
    return max(target[0], round(width * scale)), max(target[1], round(height * scale))


def downsampled_size(width: int, height: int, settings: BucketSettings) -> tuple[int, int]:
    """The size after maximum_image_size / target_downsample_size (unchanged when not exceeded)."""
    limit, goal = settings.maximum_image_size, settings.target_downsample_size
    kind = settings.resolution_type
    if not (settings.crop and limit and goal) or size_in_units(width, height, kind) <= limit:
        return width, height
    if kind == "pixel":
        scale = goal / min(width, height)
    elif kind == "area":
        scale = math.sqrt(target_area(goal, "area") / (width * height))
    else:
        scale = goal / math.sqrt(width * height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def choose_aspect(width: int, height: int, settings: BucketSettings, rng: random.Random) -> float:
    """The bucket aspect (width/height) for an image under crop / crop_aspect."""
    own = width / height
    if not settings.crop or settings.crop_aspect == "preserve":
        return own
    if settings.crop_aspect == "square":
        return 1.0
    if not settings.crop_aspect_buckets:
        raise ValueError(f"crop_aspect {settings.crop_aspect!r} needs crop_aspect_buckets")
    aspects = [a for a, _ in settings.crop_aspect_buckets]
    if settings.crop_aspect == "closest":
        return min(aspects, key=lambda a: (abs(a - own), a))
    if settings.crop_aspect == "random":
        return rng.choices(aspects, weights=[w for _, w in settings.crop_aspect_buckets])[0]
    raise ValueError(f"unknown crop_aspect {settings.crop_aspect!r}; use square, preserve, random or closest")


def crop_origin(resized: tuple[int, int], target: tuple[int, int], style: str, rng: random.Random) -> tuple[int, int]:
    """(top, left) of a `target` crop inside a `resized` image for a crop_style."""
    spare_w, spare_h = resized[0] - target[0], resized[1] - target[1]
    if spare_w < 0 or spare_h < 0:
        raise ValueError(f"crop {target} does not fit inside {resized}")
    if style in ("center", "centre"):
        return spare_h // 2, spare_w // 2
    if style == "corner":
        return spare_h, spare_w
    if style == "random":
        return rng.randint(0, spare_h), rng.randint(0, spare_w)
    if style == "face":
        raise ValueError("crop_style 'face' is not supported: use center, random or corner")
    raise ValueError(f"unknown crop_style {style!r}; use one of {', '.join(CROP_STYLES)}")


def plan_crop(width: int, height: int, settings: BucketSettings, seed_material: str = "") -> CropPlan:
    """The resize + crop for a `width` x `height` (upright) image; deterministic in `seed_material`."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    rng = random.Random(hashlib.sha256(seed_material.encode()).digest())
    target = bucket_size(choose_aspect(width, height, settings, rng), settings)
    base = downsampled_size(width, height, settings)
    covers = base[0] >= target[0] and base[1] >= target[1]
    # A downsampled image that still covers the bucket is cropped as it is (more detail kept);
    # anything else is scaled to just cover the bucket.
    resized = base if settings.crop and covers and base != (width, height) else scale_to_cover(width, height, target)
    top, left = crop_origin(resized, target, settings.crop_style, rng)
    return CropPlan((width, height), resized, top, left, target)


def apply_plan(image: Image.Image, plan: CropPlan, resample: int | None = None) -> Image.Image:
    """Resize and crop a PIL image as `plan` says (Lanczos unless `resample` is given)."""
    from PIL import Image as PILImage

    if image.size != plan.original_size:
        raise ValueError(f"image is {image.size[0]}x{image.size[1]} but the plan is for {plan.original_size}")
    method = PILImage.Resampling.LANCZOS if resample is None else resample
    resized = image if image.size == plan.resized_size else image.resize(plan.resized_size, method)
    return resized.crop(plan.crop_box)
