"""A small synthetic single-subject Dreambooth dataset, for the demo and the tests.

The subject ("sks toy") is a smiling yellow toy with round ears, orange feet and a blue bow tie,
drawn with PIL at varied positions and scales on gradient, striped, checkered or noisy
backgrounds. Every file is deterministic in ``seed``: the same seed gives byte-identical files.
:func:`write_bad_files` writes the zoo of broken inputs that ingest must survive.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

SUBJECT_TOKEN, SUBJECT_CLASS = "sks", "toy"  # the identifier and class noun of the prompts below
INSTANCE_PROMPT = f"a photo of {SUBJECT_TOKEN} {SUBJECT_CLASS}"
CLASS_PROMPT = f"a photo of a {SUBJECT_CLASS}"
SUBJECT_YELLOW = (250, 204, 21)
# (width, height) of the upright images, cycled; all >= 64 px so a demo minimum of 64 keeps them.
DEMO_SIZES = ((96, 96), (128, 96), (96, 128), (160, 120), (80, 80), (120, 160), (112, 112),
              (144, 96))
# Minimum image size (resolution_type "pixel") under which write_bad_files' outcomes hold.
BAD_FILES_MINIMUM_IMAGE_SIZE = 64

_EXIF_ORIENTATION = 0x0112
_BACKGROUND_COLOURS = {"blue": (60, 100, 200), "green": (60, 140, 80), "purple": (120, 80, 160),
                       "teal": (40, 130, 140), "grey": (125, 125, 125), "pink": (225, 140, 170),
                       "brown": (120, 85, 60), "navy": (30, 40, 90)}
_BACKGROUND_KINDS = ("gradient", "striped", "checkered", "noisy")
_CLASS_COLOURS = ((220, 50, 50), (50, 120, 220), (60, 170, 90), (150, 90, 200), (240, 140, 40),
                  (140, 100, 70))


@dataclass(frozen=True)
class DemoDataset:
    """Paths written by :func:`write_demo_dataset`; sequences are parallel, in image order."""

    root: Path
    images_dir: Path  # instance images and, with caption_files, their <stem>.txt captions
    masks_dir: Path | None  # <stem>.png per image, white = subject, upright image size
    class_images_dir: Path | None  # generic "a toy" images for prior preservation
    image_paths: tuple[Path, ...]
    mask_paths: tuple[Path, ...]
    captions: tuple[str, ...]
    class_image_paths: tuple[Path, ...]
    instance_prompt: str = INSTANCE_PROMPT
    class_prompt: str = CLASS_PROMPT


@dataclass(frozen=True)
class ExpectedOutcome:
    """What ingest should decide for one file of :func:`write_bad_files`.

    Holds for minimum_image_size BAD_FILES_MINIMUM_IMAGE_SIZE (resolution_type "pixel"),
    caption_strategy "textfile", and duplicates resolved keeping the first name in sorted order.
    """

    status: str  # "ok" | "rejected"
    reason: str  # a substring of the rejection reason; "" when ok
    stage: str  # which check rejects it: "inspect" | "duplicate" | "caption"; "" when ok
    mode_in: str = ""  # the file's PIL mode, when it decodes
    size: tuple[int, int] | None = None  # upright (width, height), when it decodes
    duplicate_of: str | None = None  # name of the byte-identical file that is kept


def write_demo_dataset(folder: Path, *, n_images: int = 8, seed: int = 0,
                       include_masks: bool = True, caption_files: bool = True,
                       include_class_images: int = 0) -> DemoDataset:
    """Write ``n_images`` images of the demo subject (plus masks, captions, class images).

    Layout: ``folder/instance_images``, ``folder/instance_masks``, ``folder/class_images``.
    Every third image (index 1, 4, 7, ...) is a JPEG stored rotated with EXIF Orientation 6 or
    8; the rest are PNG. Existing files of the same names are overwritten.
    """
    folder = Path(folder)
    images_dir = folder / "instance_images"
    masks_dir = folder / "instance_masks" if include_masks else None
    class_dir = folder / "class_images" if include_class_images else None
    for directory in (images_dir, masks_dir, class_dir):
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    image_paths, mask_paths, captions = [], [], []
    for index in range(n_images):
        rng = random.Random(f"dreamcore-demo:{seed}:{index}")
        size = DEMO_SIZES[index % len(DEMO_SIZES)]
        background, background_name = _background(size, rng)
        image, mask = _draw_subject(background, rng)
        caption = f"{INSTANCE_PROMPT} on a {background_name} background"
        stem = f"toy_{index:02d}"
        if index % 3 == 1:
            orientation = 6 if (index // 3) % 2 == 0 else 8
            path = images_dir / f"{stem}.jpg"
            path.write_bytes(encode_exif_rotated_jpeg(image, orientation))
        else:
            path = images_dir / f"{stem}.png"
            image.save(path, format="PNG")
        if masks_dir is not None:
            mask_paths.append(masks_dir / f"{stem}.png")
            mask.save(mask_paths[-1], format="PNG")
        if caption_files:
            (images_dir / f"{stem}.txt").write_text(caption + "\n", encoding="utf-8")
        image_paths.append(path)
        captions.append(caption)

    class_paths = []
    for index in range(include_class_images):
        rng = random.Random(f"dreamcore-demo-class:{seed}:{index}")
        background, _ = _background(DEMO_SIZES[(index + 3) % len(DEMO_SIZES)], rng)
        class_paths.append(class_dir / f"class_{index:02d}.png")
        _draw_class_toy(background, index, rng).save(class_paths[-1], format="PNG")
        if caption_files:
            class_paths[-1].with_suffix(".txt").write_text(CLASS_PROMPT + "\n", encoding="utf-8")

    return DemoDataset(folder, images_dir, masks_dir, class_dir, tuple(image_paths),
                       tuple(mask_paths), tuple(captions), tuple(class_paths))


def write_demo_references(dataset: DemoDataset) -> Path:
    """An edit model's reference images for the demo images: each image upright in grayscale, under the image's own
    relative name (references pair by it) in ``folder/reference_images``; the edit (the image) colours it."""
    references = dataset.root / "reference_images"
    references.mkdir(parents=True, exist_ok=True)
    for path in dataset.image_paths:
        with Image.open(path) as image:
            gray = ImageOps.exif_transpose(image).convert("L").convert("RGB")
        gray.save(references / f"{path.stem}.png", format="PNG")
    return references


def encode_exif_rotated_jpeg(upright: Image.Image, orientation: int) -> bytes:
    """JPEG bytes whose pixels are stored rotated so that exif_transpose shows ``upright``."""
    # exif_transpose undoes 6 with ROTATE_270 and 8 with ROTATE_90: store the inverse turn.
    stored_turn = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation]
    exif = Image.Exif()
    exif[_EXIF_ORIENTATION] = orientation
    buffer = io.BytesIO()
    upright.transpose(stored_turn).save(buffer, format="JPEG", quality=92, exif=exif)
    return buffer.getvalue()


def write_bad_files(folder: Path) -> dict[str, ExpectedOutcome]:
    """Write a zoo of awkward and broken image files into ``folder``; return name -> outcome.

    Every file except ``no_caption.png`` gets a sibling caption ``.txt``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    subject, _ = _draw_subject(_background((128, 96), random.Random("bad:subject"))[0],
                               random.Random("bad:draw"))
    alpha_subject, alpha_mask = _draw_subject(Image.new("RGB", (96, 96), (255, 0, 255)),
                                              random.Random("bad:alpha"))
    ok_png = _encode(subject, "PNG")
    la = alpha_subject.convert("L")
    la.putalpha(alpha_mask)
    palette = alpha_subject.quantize(colors=16)
    palette.info["transparency"] = palette.getpixel((0, 0))  # background colour index
    gray16 = np.tile(np.linspace(0, 65535, 128).round().astype(np.uint16), (96, 1))
    jpeg = _encode(subject, "JPEG")
    rejected = "rejected"
    files: dict[str, tuple[bytes, ExpectedOutcome]] = {
        "empty.png": (b"", ExpectedOutcome(rejected, "empty file", "inspect")),
        "text_named.png": (b"just some notes, not pixels\n",
                           ExpectedOutcome(rejected, "not an image", "inspect")),
        "truncated.jpg": (jpeg[: len(jpeg) // 2],
                          ExpectedOutcome(rejected, "truncated", "inspect")),
        "truncated.png": (ok_png[: len(ok_png) // 2],
                          ExpectedOutcome(rejected, "truncated", "inspect")),
        "bomb.png": (_header_only_png(30_000, 30_000),
                     ExpectedOutcome(rejected, "too many pixels", "inspect")),
        "too_small.png": (_encode(subject.resize((48, 36)), "PNG"),
                          ExpectedOutcome(rejected, "too small", "inspect")),
        "cmyk.jpg": (_encode(subject.convert("CMYK"), "JPEG"),
                     ExpectedOutcome("ok", "", "", "CMYK", (128, 96))),
        "la.png": (_encode(la, "PNG"), ExpectedOutcome("ok", "", "", "LA", (96, 96))),
        "palette_transparent.png": (_encode(palette, "PNG"),
                                    ExpectedOutcome("ok", "", "", "P", (96, 96))),
        "gray16.png": (_encode(Image.fromarray(gray16), "PNG"),
                       ExpectedOutcome("ok", "", "", "I;16", (128, 96))),
        "exif_rotated.jpg": (encode_exif_rotated_jpeg(subject, 6),
                             ExpectedOutcome("ok", "", "", "RGB", (128, 96))),
        "duplicate_a.png": (ok_png, ExpectedOutcome("ok", "", "", "RGB", (128, 96))),
        "duplicate_b.png": (ok_png, ExpectedOutcome(rejected, "duplicate", "duplicate", "RGB",
                                                    (128, 96), duplicate_of="duplicate_a.png")),
        "no_caption.png": (_encode(subject.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "PNG"),
                           ExpectedOutcome(rejected, "caption file missing", "caption", "RGB",
                                           (128, 96))),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
        if name != "no_caption.png":
            (folder / name).with_suffix(".txt").write_text(f"{INSTANCE_PROMPT}\n", "utf-8")
    return {name: outcome for name, (_, outcome) in files.items()}


def _encode(image: Image.Image, file_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=file_format, **({"quality": 90} if file_format == "JPEG" else {}))
    return buffer.getvalue()


def _header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with almost no pixel data behind it."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _background(size: tuple[int, int], rng: random.Random) -> tuple[Image.Image, str]:
    """A procedural background and its name for the caption ("teal striped")."""
    width, height = size
    colour_name = rng.choice(sorted(_BACKGROUND_COLOURS))
    kind = rng.choice(_BACKGROUND_KINDS)
    base = np.array(_BACKGROUND_COLOURS[colour_name], dtype=np.float64)
    light = base + (255 - base) * 0.4
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = xs * np.cos(angle) + ys * np.sin(angle)
        t = (t - t.min()) / max(t.max() - t.min(), 1.0)
        pixels = base * 0.6 + (light - base * 0.6) * t[..., None]
    elif kind == "striped":
        period = rng.randint(8, 18)
        stripes = ((xs + ys * rng.choice((0, 1, -1))) // (period / 2)) % 2
        pixels = np.where(stripes[..., None] > 0, light, base)
    elif kind == "checkered":
        cell = rng.randint(8, 16)
        checks = (xs // cell + ys // cell) % 2
        pixels = np.where(checks[..., None] > 0, light, base)
    else:
        noise = np.random.default_rng(rng.getrandbits(64)).normal(0, 22, (height, width, 1))
        pixels = base + noise
    rgb = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return Image.fromarray(rgb), f"{colour_name} {kind}"


def _draw_subject(background: Image.Image, rng: random.Random) -> tuple[Image.Image, Image.Image]:
    """Draw the sks toy somewhere on ``background``; return (image, mask L 0/255)."""
    image = background.copy()
    mask = Image.new("L", image.size, 0)
    width, height = image.size
    r = rng.uniform(0.22, 0.34) * min(width, height)
    cx = rng.uniform(1.05 * r, width - 1.05 * r)
    cy = rng.uniform(1.2 * r, height - 1.1 * r)
    draw, mask_draw = ImageDraw.Draw(image), ImageDraw.Draw(mask)

    def oval(x: float, y: float, rx: float, ry: float, fill, silhouette: bool = False) -> None:
        box = (x - rx, y - ry, x + rx, y + ry)
        draw.ellipse(box, fill=fill)
        if silhouette:
            mask_draw.ellipse(box, fill=255)

    for side in (-1, 1):
        oval(cx + side * 0.62 * r, cy - 0.78 * r, 0.3 * r, 0.3 * r, SUBJECT_YELLOW, True)  # ear
        oval(cx + side * 0.62 * r, cy - 0.78 * r, 0.14 * r, 0.14 * r, (240, 150, 170))
        oval(cx + side * 0.45 * r, cy + 0.88 * r, 0.3 * r, 0.16 * r, (240, 130, 30), True)  # foot
    oval(cx, cy, r, 0.92 * r, SUBJECT_YELLOW, True)  # body
    for side in (-1, 1):
        oval(cx + side * 0.35 * r, cy - 0.22 * r, 0.1 * r, 0.14 * r, (20, 20, 20))  # eye
        oval(cx + side * 0.62 * r, cy + 0.08 * r, 0.1 * r, 0.07 * r, (245, 160, 150))  # cheek
        tip = cx + side * 0.34 * r
        draw.polygon([(cx, cy + 0.6 * r), (tip, cy + 0.44 * r), (tip, cy + 0.76 * r)],
                     fill=(40, 90, 220))  # bow tie
    oval(cx, cy + 0.6 * r, 0.07 * r, 0.07 * r, (30, 60, 170))
    draw.arc((cx - 0.38 * r, cy - 0.2 * r, cx + 0.38 * r, cy + 0.32 * r), 25, 155,
             fill=(200, 30, 40), width=max(1, round(0.07 * r)))  # smile
    return image, mask


def _draw_class_toy(background: Image.Image, index: int, rng: random.Random) -> Image.Image:
    """A generic toy (ball, blocks, car or teddy) in non-subject colours, for class images."""
    image = background.copy()
    draw = ImageDraw.Draw(image)
    width, height = image.size
    r = rng.uniform(0.22, 0.32) * min(width, height)
    cx, cy = rng.uniform(1.1 * r, width - 1.1 * r), rng.uniform(1.1 * r, height - 1.1 * r)
    colour, other = rng.sample(_CLASS_COLOURS, 2)
    kind = index % 4
    if kind == 0:  # ball with a band
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
        draw.rectangle((cx - r * 0.95, cy - 0.2 * r, cx + r * 0.95, cy + 0.2 * r), fill=other)
    elif kind == 1:  # stacked blocks
        for level, fill in enumerate((colour, other, colour)):
            top = cy + r - (level + 1) * 0.66 * r
            draw.rectangle((cx - 0.6 * r, top, cx + 0.6 * r, top + 0.6 * r), fill=fill)
    elif kind == 2:  # car
        draw.rounded_rectangle((cx - r, cy - 0.4 * r, cx + r, cy + 0.3 * r), 0.2 * r, fill=colour)
        draw.rectangle((cx - 0.5 * r, cy - 0.8 * r, cx + 0.4 * r, cy - 0.4 * r), fill=other)
        for side in (-1, 1):
            wheel = cx + side * 0.55 * r
            draw.ellipse((wheel - 0.25 * r, cy + 0.1 * r, wheel + 0.25 * r, cy + 0.6 * r),
                         fill=(25, 25, 25))
    else:  # teddy
        for side in (-1, 1):
            draw.ellipse((cx + side * 0.5 * r - 0.25 * r, cy - 1.0 * r,
                          cx + side * 0.5 * r + 0.25 * r, cy - 0.5 * r), fill=colour)
        draw.ellipse((cx - 0.6 * r, cy - 0.9 * r, cx + 0.6 * r, cy + 0.2 * r), fill=colour)
        draw.ellipse((cx - 0.8 * r, cy - 0.1 * r, cx + 0.8 * r, cy + 1.0 * r), fill=other)
    return image
