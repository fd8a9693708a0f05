"""Drawing a base image and refining it: the two pipelines of the refine stage and the hand-off between them.

The base draws with a stock diffusers pipeline; its final latents are captured on the last step.
When base and refiner share the VAE (same fingerprint: same latent space) the refiner takes those
latents directly, as diffusers' base+refiner recipe does; otherwise it takes the decoded image.
Either way the refiner runs img2img at `strength` with the aesthetic-score conditioning it expects.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fsspec.core import url_to_fs

from dreamcore.drawing.pipelines import img2img_steps, load_validation_pipeline
from dreamcore.models import detect_family, model_fingerprint
from dreamcore.train.export import DIFFUSERS_LORA_FILE

if TYPE_CHECKING:
    from PIL import Image

    from dreamcore.evaluate.validation import ValidationPlan

Handoff = Literal["latents", "images"]


def handoff_kind(base_model: str, refiner_model: str) -> Handoff:
    """latents when base and refiner VAEs have the same fingerprint, else images."""
    same = model_fingerprint(base_model, "vae") == model_fingerprint(refiner_model, "vae")
    return "latents" if same else "images"


def draw_base(pipe, plan: ValidationPlan, prompt_index: int, seed: int) -> tuple[Image.Image, Any]:
    """(image, final latents [1, C, h, w]) of one validation prompt drawn by the base pipeline."""
    import torch

    captured: dict[str, Any] = {}

    def keep_latents(_pipe, _step, _timestep, tensors):
        captured["latents"] = tensors["latents"]  # the last call holds the fully denoised latents
        return tensors

    options: dict[str, Any] = {}
    if plan.size is not None:
        options.update(width=plan.size[0], height=plan.size[1])
    with torch.no_grad():
        out = pipe(prompt=plan.prompts[prompt_index], negative_prompt=plan.negative_prompt,
                   num_inference_steps=plan.num_inference_steps, guidance_scale=plan.guidance,
                   generator=torch.Generator("cpu").manual_seed(seed), callback_on_step_end=keep_latents,
                   callback_on_step_end_tensor_inputs=["latents"], **options)
    return out.images[0], captured["latents"]


def refine(refiner, plan: ValidationPlan, prompt_index: int, seed: int, start) -> Image.Image:
    """The refiner's img2img of `start` (latents or an image) at plan.strength, with aesthetic scores."""
    import torch

    with torch.no_grad():
        out = refiner(prompt=plan.prompts[prompt_index], negative_prompt=plan.negative_prompt, image=start,
                      strength=plan.strength, num_inference_steps=img2img_steps(plan.num_inference_steps,
                                                                                plan.strength),
                      guidance_scale=plan.guidance, aesthetic_score=plan.aesthetic_score,
                      negative_aesthetic_score=plan.negative_aesthetic_score,
                      generator=torch.Generator("cpu").manual_seed(seed))
    return out.images[0]


def load_refiner(model: str, device, dtype=None):
    """The refiner's stock img2img pipeline; refuses a model whose family does not refine images."""
    family = detect_family(model)
    if not family.refines_images or family.upscale_factor != 1:
        raise ValueError(f"refiner_model_name_or_path {model!r} is a {family.name} model, not an SDXL refiner "
                         "(StableDiffusionXLImg2ImgPipeline with text_encoder_2 only)")
    return load_validation_pipeline(model, device, dtype)


@contextlib.contextmanager
def refiner_lora(refiner, lora: str | None) -> Iterator[object]:
    """Context: the refiner with a tuned diffusers-format LoRA loaded (nothing when `lora` is None)."""
    if lora is None:
        yield refiner
        return
    with tempfile.TemporaryDirectory(prefix="dreamcore-refiner-lora-") as tmp:
        fs, path = lora_file(lora)
        local = Path(tmp) / DIFFUSERS_LORA_FILE
        fs.get(path, str(local))
        refiner.load_lora_weights(tmp, weight_name=DIFFUSERS_LORA_FILE, adapter_name="dreamcore_refiner")
        try:
            yield refiner
        finally:
            refiner.unload_lora_weights()


def lora_file(lora: str):
    """(filesystem, path) of the LoRA weights file: `lora` itself or pytorch_lora_weights.safetensors inside it."""
    fs, path = url_to_fs(lora)
    if fs.isdir(path):
        path = f"{path.rstrip('/')}/{DIFFUSERS_LORA_FILE}"
    if not fs.isfile(path):
        raise FileNotFoundError(f"refiner_lora_path {lora!r}: no LoRA weights at {path} (expected a diffusers "
                                f"{DIFFUSERS_LORA_FILE} or the export/diffusers folder of a refiner training run)")
    return fs, path
