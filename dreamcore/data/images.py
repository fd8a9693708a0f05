"""Decode and validate one image file from its bytes.

The ingest stage calls :func:`inspect_image` on every file it finds; a bad file must turn into a
``rejected`` :class:`ImageCheck` with a reason a user can act on, never an exception.
:func:`load_rgb` is the one way later stages turn accepted bytes into an upright 8-bit RGB image.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
RESOLUTION_TYPES = ("pixel", "area", "pixel_area")
DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's own hard limit (2 * Image.MAX_IMAGE_PIXELS)

# Decoders tried, matching IMAGE_EXTENSIONS (phone "MPO" JPEGs open through "JPEG"). Naming them
# keeps a renamed EPS or PSD away from its decoder (EPS would run Ghostscript).
DECODER_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")

_EXIF_ORIENTATION = 0x0112
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # transpose / rotate 90 / transverse / rotate 270
_WHITE = (255, 255, 255)


@dataclass(frozen=True)
class ImageCheck:
    """Outcome of :func:`inspect_image` for one file."""

    status: str  # "ok" | "rejected"
    reason: str  # "" when ok; otherwise a sentence for the user
    width: int  # after EXIF orientation; 0 if unreadable
    height: int
    mode_in: str  # the file's PIL mode ("RGB", "CMYK", "I;16", ...); "" if unreadable
    digest: str  # sha256 hex of the raw file bytes

    @property
    def ok(self) -> bool:
        """True when the image was accepted."""
        return self.status == "ok"


def content_digest(data: bytes) -> str:
    """Return the sha256 hex digest of raw file bytes (used to find exact duplicates)."""
    return hashlib.sha256(data).hexdigest()


def is_image_name(path: str | os.PathLike[str]) -> bool:
    """True if the file name has one of IMAGE_EXTENSIONS (case-insensitive)."""
    return os.path.splitext(os.fspath(path))[1].lower() in IMAGE_EXTENSIONS


def inspect_image(
    data: bytes,
    *,
    minimum_image_size: float | None,
    resolution_type: str = "pixel",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageCheck:
    """Decode ``data`` fully and check it; bad files come back ``rejected``, never raise.

    ``minimum_image_size`` follows SimpleTuner: an edge length in px for "pixel" (shorter edge)
    and "pixel_area" (area >= size**2), megapixels for "area". ``None`` or 0 disables the check.
    Raises ValueError only for a bad ``resolution_type`` or a negative minimum (config errors).
    """
    _check_size_settings(minimum_image_size, resolution_type)
    digest = content_digest(data)

    def rejected(reason: str, width: int = 0, height: int = 0, mode: str = "") -> ImageCheck:
        return ImageCheck("rejected", reason, width, height, mode, digest)

    if not data:
        return rejected("empty file")
    try:
        with Image.open(io.BytesIO(data), formats=DECODER_FORMATS) as img:
            mode = img.mode
            # Image.size comes from the header: check it before any pixel is decoded.
            width, height = _oriented_size(img)
            too_many = _too_many_pixels_reason(width, height, max_pixels)
            if too_many:
                return rejected(too_many, width, height, mode)
            try:
                img.load()  # full decode: truncated or corrupt data raises here
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                return rejected(f"too many pixels: {exc}", width, height, mode)
            except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
                return rejected(f"truncated or corrupt image: {_describe(exc)}", mode=mode)
            # Some formats (PNG eXIf after IDAT) only reveal orientation once loaded.
            width, height = _oriented_size(img)
    except Exception as exc:  # noqa: BLE001 - plugins raise all sorts on garbage headers
        return rejected(_open_failure(exc))

    too_small = _too_small_reason(width, height, minimum_image_size, resolution_type)
    if too_small:
        return rejected(too_small, width, height, mode)
    return ImageCheck("ok", "", width, height, mode, digest)


def header_reason(
    file: BinaryIO,
    *,
    minimum_image_size: float | None,
    resolution_type: str = "pixel",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> str:
    """Why :func:`inspect_image` would reject this file, judged from its header alone ("" when the header
    passes): empty, not an image, too many pixels, too small. Nothing is decoded, so a file that passes may still
    be rejected by ingest (truncated or corrupt data). Same settings and ValueErrors as inspect_image."""
    _check_size_settings(minimum_image_size, resolution_type)
    if not file.read(1):
        return "empty file"
    file.seek(0)
    try:
        with Image.open(file, formats=DECODER_FORMATS) as img:
            # As stored: EXIF orientation swaps the edges, which neither bound below depends on, and asking a
            # PNG for its EXIF decodes it.
            width, height = img.size
    except Exception as exc:  # noqa: BLE001 - plugins raise all sorts on garbage headers
        return _open_failure(exc)
    return (_too_many_pixels_reason(width, height, max_pixels)
            or _too_small_reason(width, height, minimum_image_size, resolution_type))


def load_rgb(data: bytes) -> Image.Image:
    """Decode ``data`` into an upright 8-bit RGB image.

    EXIF orientation is applied; alpha (RGBA, LA, PA, P/RGB/L with transparency) is flattened
    onto white; CMYK, L and 1 are converted; 16-bit and 32-bit integer ("I;16*", "I") are read
    as 0..65535 and scaled to 0..255; float "F" in [0, 1] is scaled by 255, any other range is
    stretched min..max. Raises ValueError if the bytes do not decode (call inspect_image first).
    """
    try:
        with Image.open(io.BytesIO(data), formats=DECODER_FORMATS) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
    except Exception as exc:  # noqa: BLE001 - re-raised with a message for the user
        raise ValueError(f"cannot decode image: {_describe(exc)}") from exc
    return _to_rgb(upright)


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(img).astype(np.float64)
        return _gray_to_rgb(np.clip(values, 0, 65535) * (255 / 65535))
    if mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        low, high = float(values.min()), float(values.max())
        if low >= 0.0 and high <= 1.0:
            return _gray_to_rgb(values * 255)
        scale = 255 / (high - low) if high > low else 0.0
        return _gray_to_rgb((values - low) * scale)
    if "A" in mode or "a" in mode or "transparency" in img.info:
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGB") if mode != "RGB" else img


def _gray_to_rgb(values: np.ndarray) -> Image.Image:
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) as ImageOps.exif_transpose would leave them, without moving pixels."""
    width, height = img.size
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - malformed EXIF: exif_transpose would ignore it too
        orientation = 1
    if orientation in _SWAPPING_ORIENTATIONS:
        return height, width
    return width, height


def _check_size_settings(minimum_image_size: float | None, resolution_type: str) -> None:
    if resolution_type not in RESOLUTION_TYPES:
        raise ValueError(
            f"resolution_type {resolution_type!r} is not one of {', '.join(RESOLUTION_TYPES)}"
        )
    if minimum_image_size is not None and minimum_image_size < 0:
        raise ValueError(f"minimum_image_size must be >= 0, got {minimum_image_size}")


def _open_failure(exc: Exception) -> str:
    """The rejection reason of a file whose header does not open."""
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"too many pixels: {exc}"
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not an image: not JPEG, PNG, WebP, BMP or TIFF data"
    return f"not an image: {_describe(exc)}"


def _too_many_pixels_reason(width: int, height: int, max_pixels: int) -> str:
    if width * height <= max_pixels:
        return ""
    return (f"too many pixels: {width}x{height} = {width * height} > max_pixels {max_pixels} "
            "(possible decompression bomb)")


def _too_small_reason(
    width: int, height: int, minimum: float | None, resolution_type: str
) -> str:
    if not minimum:
        return ""
    size = f"{width}x{height}"
    suffix = f"(resolution_type {resolution_type})"
    if resolution_type == "pixel":
        shorter = min(width, height)
        if shorter < minimum:
            return (
                f"too small: {size} (shorter edge {shorter} px) < minimum_image_size "
                f"{minimum:g} {suffix}"
            )
    elif resolution_type == "area":
        megapixels = width * height / 1e6
        if megapixels < minimum:
            return (
                f"too small: {size} ({megapixels:.4g} megapixels) < minimum_image_size "
                f"{minimum:g} megapixels {suffix}"
            )
    elif width * height < minimum**2:  # pixel_area
        return (
            f"too small: {size} ({width * height} px area) < minimum_image_size {minimum:g} "
            f"squared = {minimum**2:g} px area {suffix}"
        )
    return ""


def _describe(exc: BaseException) -> str:
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
