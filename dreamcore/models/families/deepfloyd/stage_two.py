"""DeepFloyd IF stage II: the pixel-space upscaler (64 -> 256 px). Its UNet takes the noisy target beside the
noise-augmented, upscaled low-resolution image (6 input channels), with the augmentation level as `class_labels`,
and predicts noise beside a learned variance (6 output channels: the loss is on the noise half).

Training pairs come from the cached target pixels themselves: each target is downscaled by 4 (what a stage-I
output is to its stage-II target), upscaled back bilinearly and noised with the image-noising schedule at a
level drawn per sample, exactly as IFSuperResolutionPipeline.__call__ builds its `upscaled` input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dreamcore.config.options.families import DeepFloydOptions
from dreamcore.models.families.deepfloyd import FAMILY as STAGE_ONE
from dreamcore.models.families.deepfloyd.tiny import build_deepfloyd_ii, if_image_noising_scheduler
from dreamcore.models.families.denoisers import Conditioning

UPSCALE_FACTOR = 4  # stage I draws 64 px, stage II returns 256 px
# The highest augmentation level drawn in training: IFSuperResolutionPipeline's default noise_level (250), so
# training covers the levels the stock pipeline samples at and below.
MAX_NOISE_LEVEL = 250


def is_deepfloyd_stage_two(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """An IFSuperResolutionPipeline folder (stage II: the 64 -> 256 px upscaler)."""
    return index.get("_class_name") == "IFSuperResolutionPipeline"


def degraded_input(clean, noise, noise_level):
    """The stage-II conditioning image of targets `clean` [B, 3, H, W]: downscaled by 4 (a stage-I output), upscaled
    back bilinearly as the pipeline does (align_corners=True), noised with the image-noising schedule at
    `noise_level` [B] with `noise` [B, 3, H, W]."""
    import torch.nn.functional as F

    height, width = clean.shape[-2:]
    low = F.interpolate(clean, (height // UPSCALE_FACTOR, width // UPSCALE_FACTOR), mode="bilinear",
                        antialias=True, align_corners=False)
    upscaled = F.interpolate(low, (height, width), mode="bilinear", align_corners=True)
    return if_image_noising_scheduler().add_noise(upscaled, noise, noise_level)


def deepfloyd_ii_image_conditioning(clean, generator):
    """(conditioning image [B, 3, H, W], noise level [B]) for targets `clean`: a level drawn uniformly in
    [0, MAX_NOISE_LEVEL] per sample and the augmentation noise, both from CPU `generator`."""
    import torch

    clean = clean.detach().float().cpu()
    level = torch.randint(0, MAX_NOISE_LEVEL + 1, (clean.shape[0],), generator=generator)
    noise = torch.randn(clean.shape, generator=generator)
    return degraded_input(clean, noise, level), level


def predict_deepfloyd_ii(unet, noisy, timesteps, conditioning: Conditioning):
    """The noise half [B, 3, H, W] of the stage-II UNet's output, given the noisy target beside the conditioning
    image and the augmentation level as class_labels (IFSuperResolutionPipeline's call)."""
    import torch

    if conditioning.image is None or conditioning.class_labels is None:
        raise ValueError("DeepFloyd IF stage II needs its low-resolution input (Conditioning.image and "
                         "class_labels), made by the family's image_conditioning from the clean targets")
    model_input = torch.cat([noisy, conditioning.image.to(noisy.dtype)], dim=1)
    prediction = unet(model_input, timesteps, encoder_hidden_states=conditioning.prompt_embeds,
                      class_labels=conditioning.class_labels, return_dict=False)[0]
    return prediction[:, : noisy.shape[1]]


# Stage I's text side, pixel caches, LoRA targets and checkers; its own denoiser call, input and tiny model.
FAMILY = replace(
    STAGE_ONE,
    name="deepfloyd-ii",
    detects=is_deepfloyd_stage_two,
    pipeline_class="IFSuperResolutionPipeline",
    refines_images=True,  # it upscales images, it cannot draw from prompts
    upscale_factor=UPSCALE_FACTOR,  # validation upscales dataset images shrunk by it
    # or, when set, what this stage I model draws from the validation prompts
    first_stage_key="deepfloyd_validation_stage1_model",
    options=(DeepFloydOptions,),
    predict=predict_deepfloyd_ii,
    image_conditioning=deepfloyd_ii_image_conditioning,
    tiny_model=build_deepfloyd_ii,
)
