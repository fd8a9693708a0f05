"""inspect_image never raises on bad files and gets sizes right; load_rgb gives upright 8-bit RGB."""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image, ImageFile

from dreamcore.data.demo import BAD_FILES_MINIMUM_IMAGE_SIZE, write_bad_files
from dreamcore.data.images import (
    DEFAULT_MAX_PIXELS,
    content_digest,
    header_reason,
    inspect_image,
    is_image_name,
    load_rgb,
)


def encode(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def header_only_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 8))


def check(data: bytes, **options):
    options.setdefault("minimum_image_size", None)
    return inspect_image(data, **options)


# --- files that must be rejected -------------------------------------------------------------


def test_zero_byte_file_is_rejected_as_empty():
    result = check(b"")
    assert (result.status, result.reason, result.width, result.height) == ("rejected", "empty file", 0, 0)
    assert result.digest == hashlib.sha256(b"").hexdigest()


def test_text_named_png_is_not_an_image():
    result = check(b"shopping list: milk, eggs\n")
    assert result.status == "rejected"
    assert result.reason.startswith("not an image: ")
    assert (result.width, result.height, result.mode_in) == (0, 0, "")


@pytest.mark.parametrize("format", ["JPEG", "PNG"])
def test_truncated_file_is_rejected_by_a_full_decode(format):
    data = encode(noise_image(64, 48), format)
    result = check(data[: len(data) // 2])
    assert result.status == "rejected"
    assert "truncated" in result.reason
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # the global is left alone


def test_pixel_limit_is_checked_from_the_header_before_decoding(monkeypatch):
    # A truncated file: decoding it would fail, so "too many pixels" proves nothing was decoded.
    data = encode(noise_image(400, 300), "PNG")[:300]
    assert "truncated" in check(data).reason

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    result = check(data, max_pixels=1000)
    assert result.status == "rejected"
    assert result.reason.startswith("too many pixels: 400x300 = 120000 > max_pixels 1000")
    assert (result.width, result.height) == (400, 300)


def test_pillow_decompression_bomb_error_is_caught_without_touching_its_limit():
    limit = Image.MAX_IMAGE_PIXELS
    result = check(header_only_png(30_000, 30_000))
    assert result.status == "rejected"
    assert result.reason.startswith("too many pixels")
    assert Image.MAX_IMAGE_PIXELS == limit


def test_pillow_decompression_bomb_warning_raised_as_error_is_caught():
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        result = check(header_only_png(10_000, 10_000))  # above MAX_IMAGE_PIXELS, below 2x
    assert result.status == "rejected"
    assert result.reason.startswith("too many pixels")


@pytest.mark.parametrize("format", ["GIF", "PPM", "EPS"])
def test_formats_outside_image_extensions_are_not_decoded(format):
    try:
        data = encode(noise_image(80, 80), format)
    except OSError:  # EPS needs Ghostscript to write; then a hand-written header stands in
        data = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 80 80\n"
    result = check(data)
    assert result.status == "rejected" and result.reason.startswith("not an image: ")


# --- minimum_image_size with SimpleTuner's meanings ------------------------------------------


@pytest.mark.parametrize(
    "resolution_type, minimum, accepted",
    [
        ("pixel", None, True),
        ("pixel", 0, True),
        ("pixel", 90, True),  # shorter edge 90 >= 90
        ("pixel", 91, False),
        ("area", 0.0108, True),  # 120 * 90 = 0.0108 megapixels
        ("area", 0.011, False),
        ("pixel_area", 103, True),  # 103**2 = 10609 <= 10800
        ("pixel_area", 104, False),  # 104**2 = 10816 > 10800
    ],
)
def test_minimum_image_size(resolution_type, minimum, accepted):
    result = check(encode(noise_image(120, 90)), minimum_image_size=minimum, resolution_type=resolution_type)
    assert result.ok is accepted
    assert (result.width, result.height, result.mode_in) == (120, 90, "RGB")
    if not accepted:
        assert result.reason.startswith("too small: 120x90 (")
        assert f"(resolution_type {resolution_type})" in result.reason


def test_too_small_reason_reads_well():
    result = check(encode(noise_image(120, 90)), minimum_image_size=192)
    assert result.reason == "too small: 120x90 (shorter edge 90 px) < minimum_image_size 192 (resolution_type pixel)"


def test_bad_settings_are_config_errors():
    with pytest.raises(ValueError, match="pixel, area, pixel_area"):
        check(b"", resolution_type="megapixel")
    with pytest.raises(ValueError, match="minimum_image_size"):
        check(b"", minimum_image_size=-1)


# --- EXIF orientation ------------------------------------------------------------------------


def exif_jpeg(stored: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", exif=exif, quality=95)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_upright_size(orientation):
    data = exif_jpeg(noise_image(64, 96), orientation)
    result = check(data)
    expected = (96, 64) if orientation >= 5 else (64, 96)
    assert (result.width, result.height) == expected
    assert load_rgb(data).size == expected


def test_load_rgb_applies_orientation_6_to_the_pixels():
    upright = np.zeros((40, 64, 3), dtype=np.uint8)
    upright[:, :32] = (255, 0, 0)  # left half red, right half blue
    upright[:, 32:] = (0, 0, 255)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    pixels = np.asarray(load_rgb(exif_jpeg(stored, 6)), dtype=int)
    assert pixels.shape == (40, 64, 3)
    assert np.abs(pixels - upright).mean() < 10


# --- load_rgb mode normalisation -------------------------------------------------------------


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_every_supported_format_is_accepted(format):
    data = encode(noise_image(80, 60), format)
    result = check(data, minimum_image_size=60)
    assert (result.status, result.width, result.height, result.mode_in) == ("ok", 80, 60, "RGB")
    assert load_rgb(data).size == (80, 60)


@pytest.mark.parametrize(
    "mode, format",
    [("I;16", "PNG"), ("I;16B", "TIFF"), ("I", "TIFF")],
)
def test_16_bit_gradient_keeps_its_gradient(mode, format):
    ramp = np.tile(np.linspace(0, 65535, 256).round(), (4, 1))
    if mode == "I":
        image = Image.fromarray(ramp.astype(np.int32))
    else:
        image = Image.frombytes(mode, (256, 4), ramp.astype(">u2" if mode.endswith("B") else "<u2").tobytes())
    data = encode(image, format)
    assert check(data).mode_in == mode
    pixels = np.asarray(load_rgb(data))
    assert pixels.dtype == np.uint8
    row = pixels[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) >= 0) and len(np.unique(row)) > 200  # not clipped to white
    assert np.abs(row - np.arange(256)).max() <= 1
    assert np.array_equal(pixels[..., 0], pixels[..., 2])


def test_float_image_is_scaled():
    unit = np.tile(np.linspace(0, 1, 256, dtype=np.float32), (4, 1))
    row = np.asarray(load_rgb(encode(Image.fromarray(unit), "TIFF")))[0, :, 0].astype(int)
    assert np.abs(row - np.arange(256)).max() <= 1
    wide = np.tile(np.linspace(-5, 5, 256, dtype=np.float32), (4, 1))
    row = np.asarray(load_rgb(encode(Image.fromarray(wide), "TIFF")))[0, :, 0].astype(int)
    assert (row[0], row[-1]) == (0, 255) and np.all(np.diff(row) >= 0)


def test_la_is_flattened_onto_white():
    image = Image.new("LA", (32, 16), (0, 255))
    image.putalpha(Image.fromarray(np.repeat([[0] * 16 + [255] * 16], 16, axis=0).astype(np.uint8)))
    pixels = np.asarray(load_rgb(encode(image)))
    assert check(encode(image)).mode_in == "LA"
    assert np.all(pixels[:, :16] == 255)  # transparent → white
    assert np.all(pixels[:, 16:] == 0)  # opaque black stays black


def test_rgba_half_transparent_blends_with_white():
    pixels = np.asarray(load_rgb(encode(Image.new("RGBA", (8, 8), (0, 0, 0, 128)))))
    assert np.all(np.abs(pixels.astype(int) - 127) <= 1)


def test_palette_transparency_is_flattened_onto_white():
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 200, 0, 0])
    image.paste(0, (0, 0, 4, 8))
    data = encode(image, transparency=0)
    pixels = np.asarray(load_rgb(data))
    assert np.all(pixels[:, :4] == 255)
    assert np.all(pixels[:, 4:] == (200, 0, 0))


@pytest.mark.parametrize("format", ["JPEG", "TIFF"])
def test_cmyk_converts_to_rgb(format):
    data = encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), format)  # red
    assert check(data).mode_in == "CMYK"
    image = load_rgb(data)
    assert image.mode == "RGB"
    assert np.abs(np.asarray(image, dtype=int) - (255, 0, 0)).max() <= 8


@pytest.mark.parametrize("mode", ["L", "1"])
def test_gray_and_bilevel_become_rgb(mode):
    image = load_rgb(encode(Image.new(mode, (8, 8), 255 if mode == "L" else 1)))
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 255, 255)


def test_load_rgb_raises_a_clear_error_on_garbage():
    with pytest.raises(ValueError, match="cannot decode image"):
        load_rgb(b"not pixels")


# --- the bad-file zoo and small helpers ------------------------------------------------------


def test_bad_file_zoo_inspects_as_expected(tmp_path: Path):
    for name, expected in write_bad_files(tmp_path).items():
        data = (tmp_path / name).read_bytes()
        result = inspect_image(data, minimum_image_size=BAD_FILES_MINIMUM_IMAGE_SIZE)
        if expected.stage == "inspect":
            assert result.status == "rejected", name
            assert expected.reason in result.reason, (name, result.reason)
            continue
        assert result.ok, (name, result.reason)
        assert (result.mode_in, (result.width, result.height)) == (expected.mode_in, expected.size), name
        image = load_rgb(data)
        assert (image.mode, image.size) == ("RGB", expected.size), name


def test_header_reason_agrees_with_inspect_image_on_the_zoo(tmp_path: Path):
    """The header alone rejects what inspect_image rejects before decoding, with its reason; a file that only fails
    when decoded (truncated) passes the header; it never rejects a file inspect_image accepts."""
    for name, expected in write_bad_files(tmp_path).items():
        data = (tmp_path / name).read_bytes()
        full = inspect_image(data, minimum_image_size=BAD_FILES_MINIMUM_IMAGE_SIZE)
        header = header_reason(io.BytesIO(data), minimum_image_size=BAD_FILES_MINIMUM_IMAGE_SIZE)
        if not full.ok and "truncated" not in full.reason:
            assert header == full.reason, name
        else:
            assert header == "", (name, header)


class CountingReader(io.BytesIO):
    """A file that counts the bytes read from it."""

    read_total = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.read_total += len(data)
        return data


def test_header_reason_reads_the_header_not_the_pixels():
    data = encode(noise_image(600, 400))
    file = CountingReader(data)
    assert header_reason(file, minimum_image_size=512) == (
        "too small: 600x400 (shorter edge 400 px) < minimum_image_size 512 (resolution_type pixel)")
    assert len(data) > 500_000 and file.read_total < 70_000
    assert header_reason(io.BytesIO(b""), minimum_image_size=None) == "empty file"
    with pytest.raises(ValueError, match="resolution_type"):
        header_reason(io.BytesIO(data), minimum_image_size=1, resolution_type="edge")


def test_content_digest_is_sha256_hex():
    assert content_digest(b"abc") == hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize(
    "name, expected",
    [("a/b.JPG", True), ("x.jpeg", True), ("s3://bucket/set/y.tiff", True), (Path("z.webp"), True),
     (PurePosixPath("d/e.bmp"), True), ("notes.txt", False), ("image.png.txt", False), ("gif.gif", False),
     ("noext", False)],
)
def test_is_image_name(name, expected):
    assert is_image_name(name) is expected


def test_default_pixel_limit_matches_pillow_hard_limit():
    assert DEFAULT_MAX_PIXELS == 2 * Image.MAX_IMAGE_PIXELS
