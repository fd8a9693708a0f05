"""A BatchSource held in memory, and a small encoder that fills it from images and prompts.

For tests, benchmarks and experiments without the Parquet caches: `encode_samples` runs the VAE and
text encoders once (as the cache stages do), `InMemoryBatchSource` serves seeded, resumable batches
of those samples exactly like a cache-backed source.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dreamcore.cache.batch import TrainingBatch, stack_text
from dreamcore.models import detect_family, load_pipeline
from dreamcore.models.families.captions import CaptionSettings

if TYPE_CHECKING:
    from PIL import Image

    from dreamcore.models import ModelFamily

# The refiner's aesthetic-score time id for in-memory samples (the caches use data_aesthetic_score).
_AESTHETIC_SCORE = 6.0


class InMemoryBatchSource:
    """Endless seeded batches over single-sample TrainingBatches that share one latent shape.

    The stream is a sequence of epochs, each a seeded permutation of the samples; a batch takes
    the next `batch_size` positions (it may span two epochs). `state_dict()` is that position.
    """

    def __init__(self, samples: Sequence[TrainingBatch], batch_size: int, seed: int = 0) -> None:
        if not samples:
            raise ValueError("InMemoryBatchSource needs at least one sample")
        shapes = {tuple(s.latents.shape[1:]) for s in samples}
        if len(shapes) > 1 or any(s.size != 1 for s in samples):
            raise ValueError(f"samples must be single-sample batches of one latent shape; got shapes {shapes}")
        self.samples = list(samples)
        self.batch_size = batch_size
        self.seed = seed
        self.position = 0

    def __iter__(self) -> Iterator[TrainingBatch]:
        while True:
            indices = [self._index_at(self.position + i) for i in range(self.batch_size)]
            self.position += self.batch_size
            yield collate([self.samples[i] for i in indices])

    def _index_at(self, position: int) -> int:
        import torch

        epoch, offset = divmod(position, len(self.samples))
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return int(torch.randperm(len(self.samples), generator=generator)[offset])

    def state_dict(self) -> dict[str, Any]:
        """The stream position (how many samples were handed out)."""
        return {"position": self.position, "seed": self.seed, "samples": len(self.samples)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the stream where a saved state left it."""
        if state.get("samples") != len(self.samples) or state.get("seed") != self.seed:
            raise ValueError(f"saved batch position {state} belongs to another dataset or seed")
        self.position = int(state["position"])


def collate(samples: Sequence[TrainingBatch]) -> TrainingBatch:
    """Concatenate batches of one latent shape into one batch."""
    import torch

    def cat(name: str):
        values = [getattr(s, name) for s in samples]
        present = [v for v in values if v is not None]
        if not present:
            return None
        if len(present) < len(values):
            if name != "loss_mask":
                raise ValueError(f"cannot batch samples where only some have {name}")
            # A sample without a mask trains everywhere: an all-ones mask.
            values = [torch.ones_like(present[0]) if v is None else v for v in values]
        return torch.cat(values)

    def text(name: str):  # rows of each caption's own length (Qwen-Image) are padded as the cache's batches
        values = [getattr(s, name) for s in samples]
        return None if values[0] is None else stack_text([row for value in values for row in value])

    return TrainingBatch(
        latents=cat("latents"),
        prompt_embeds=text("prompt_embeds"),
        pooled_prompt_embeds=cat("pooled_prompt_embeds"),
        time_ids=cat("time_ids"),
        loss_mask=cat("loss_mask"),
        is_regularisation=cat("is_regularisation"),
        dataset_ids=[d for s in samples for d in s.dataset_ids],
        paths=[p for s in samples for p in s.paths],
        prompt_attention_mask=text("prompt_attention_mask"),
    )


def encode_samples(
    pipe,
    family: ModelFamily,
    images: Sequence[Image.Image],
    prompts: Sequence[str],
    *,
    resolution: int = 64,
    masks: Sequence[Image.Image] | None = None,
    regularisation: bool = False,
    dataset_id: str = "memory",
    max_sequence_length: int = 32,
) -> list[TrainingBatch]:
    """Encode images (centre-cropped to `resolution` px squares) and prompts into single-sample batches.

    `pipe` is a loaded pipeline of `family` (VAE and text encoders are used once, under no_grad); sequence encoders
    (T5, Gemma2) read at most `max_sequence_length` tokens.
    Masks stay at pixel size; the trainer brings them to latent size.
    """
    import torch

    samples = []
    with torch.no_grad():
        for index, (image, prompt) in enumerate(zip(images, prompts, strict=True)):
            pixels, crop = centre_square(image.convert("RGB"), resolution)
            sample = encode_one(pipe, family, pixels, prompt, original_size=image.size[::-1], crop_top_left=crop,
                                max_sequence_length=max_sequence_length)
            mask = None
            if masks is not None:
                mask_pixels, _ = centre_square(masks[index].convert("L"), resolution)
                mask = torch.from_numpy(_array(mask_pixels) / 255.0).float()[None, None]
            samples.append(
                replace(
                    sample,
                    loss_mask=mask,
                    is_regularisation=torch.tensor([regularisation]),
                    dataset_ids=[dataset_id],
                    paths=[f"{dataset_id}/{index:04d}"],
                )
            )
    return samples


def encode_one(pipe, family: ModelFamily, pixels, prompt: str, original_size=None, crop_top_left=(0, 0),
               max_sequence_length: int = 32) -> TrainingBatch:
    """One image (PIL, already at training size) and its prompt as a 1-sample TrainingBatch, encoded as
    the family's text cache and VAE cache encode them.

    Latents are the family's `encode_latents` (AutoencoderKL: (mode - VAE shift) x VAE scale); T5
    encoders (SD3, Flux) read at most `max_sequence_length` tokens.
    """
    import torch

    tensor = torch.from_numpy(_array(pixels)).float().permute(2, 0, 1)[None] / 127.5 - 1.0
    latents = tensor  # a pixel-space family (no VAE) trains on the pixels in [-1, 1]
    if family.latent_vae is not None:
        vae = getattr(pipe, family.latent_vae)
        latents = family.encode_latents(vae, tensor.to(vae.device, vae.dtype))
    height, width = tensor.shape[-2:]
    original_size = tuple(original_size or (height, width))
    encoded = family.encode_captions(pipe, [prompt], CaptionSettings(max_sequence_length))
    time_ids = None
    if family.time_ids is not None:
        row = {"original_height": original_size[0], "original_width": original_size[1],
               "crop_top": crop_top_left[0], "crop_left": crop_top_left[1], "target_height": height,
               "target_width": width}
        time_ids = torch.tensor([family.time_ids(row, _AESTHETIC_SCORE)], dtype=torch.float32)
    mask = None if encoded.attention_mask is None else encoded.attention_mask.bool()
    return TrainingBatch(latents=latents.float().cpu(), prompt_embeds=encoded.prompt_embeds,
                         pooled_prompt_embeds=encoded.pooled, time_ids=time_ids, prompt_attention_mask=mask)


def centre_square(image, resolution: int):
    """Resize the shorter edge to `resolution` and centre-crop; returns the image and the crop (top, left)."""
    from PIL import Image

    width, height = image.size
    scale = resolution / min(width, height)
    size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    resized = image.resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    return resized.crop((left, top, left + resolution, top + resolution)), (top, left)


def _array(image):
    import numpy as np

    return np.asarray(image, dtype=np.float32)


def demo_samples(model_folder, data_folder, *, subjects: int = 4, regularisation: int = 2, masks: bool = True,
                 resolution: int = 64, max_sequence_length: int = 32) -> list[TrainingBatch]:
    """The synthetic demo subject (with masks) and class images (as regularisation samples), encoded by a model
    (sequence encoders at `max_sequence_length` tokens)."""
    from PIL import Image

    from dreamcore.data.demo import write_demo_dataset

    demo = write_demo_dataset(data_folder, n_images=subjects, include_masks=masks,
                              include_class_images=regularisation)
    family = detect_family(model_folder)
    pipe = load_pipeline(model_folder, family)
    subject_masks = [Image.open(p) for p in demo.mask_paths] if masks else None
    samples = encode_samples(pipe, family, [Image.open(p) for p in demo.image_paths], list(demo.captions),
                             resolution=resolution, masks=subject_masks, dataset_id="subject",
                             max_sequence_length=max_sequence_length)
    if regularisation:
        samples += encode_samples(pipe, family, [Image.open(p) for p in demo.class_image_paths],
                                  [demo.class_prompt] * regularisation, resolution=resolution,
                                  regularisation=True, dataset_id="regularisation",
                                  max_sequence_length=max_sequence_length)
    return samples
