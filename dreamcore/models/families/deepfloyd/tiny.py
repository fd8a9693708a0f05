"""DeepFloyd IF stage I's tiny random pipeline for tests and the offline demo (sizes: docs/PLATFORM.md).

The UNet has IF's shape at toy size (diffusers' own IF test components): 3 input channels (pixels), 6 output
(noise + learned variance), T5 states projected by encoder_hid_dim, a pooled text embedding added to the time
embedding (addition_embed_type "text"), scale-shift resnets, added key/value cross attention.
"""

from __future__ import annotations

from collections.abc import Callable

from dreamcore.models.tiny_transformers import TEXT_WIDTH, tiny_t5
from dreamcore.models.tokenizer import character_t5_tokenizer

IF_IMAGE_SIZE = 64  # stage I draws 64 px images


def if_scheduler():
    """IF's training and sampling scheduler: cosine betas, epsilon with a learned variance range, thresholding."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", beta_start=0.0001,
                         beta_end=0.02, thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=1.0,
                         prediction_type="epsilon", variance_type="learned_range", clip_sample=True,
                         clip_sample_range=1.0)


def tiny_if_unet(in_channels: int = 3, **extra):
    """A tiny IF-shaped UNet2DConditionModel (64 px, 6 output channels)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=IF_IMAGE_SIZE, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        in_channels=in_channels, out_channels=6, cross_attention_dim=TEXT_WIDTH, encoder_hid_dim=TEXT_WIDTH,
        attention_head_dim=8, addition_embed_type="text", addition_embed_type_num_heads=2,
        cross_attention_norm="group_norm", resnet_time_scale_shift="scale_shift", act_fn="gelu",
        norm_num_groups=8, **extra)


def build_deepfloyd(seeded: Callable[[str, Callable[[], object]], object]):
    """A tiny IFPipeline (stage I: 64 px pixels, T5 text encoder, no safety checker or watermarker)."""
    from diffusers import IFPipeline

    t5 = character_t5_tokenizer()
    return IFPipeline(
        tokenizer=t5,
        text_encoder=seeded("text_encoder", lambda: tiny_t5(t5)),
        unet=seeded("unet", tiny_if_unet),
        scheduler=if_scheduler(),
        safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False,
    )


def if_image_noising_scheduler():
    """IF stage II's image-noising schedule (its pipeline's image_noising_scheduler): cosine betas, 1000 levels."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", beta_start=0.0001,
                         beta_end=0.02)


def build_deepfloyd_ii(seeded: Callable[[str, Callable[[], object]], object]):
    """A tiny IFSuperResolutionPipeline (stage II: noisy target + upscaled low-res image in, 6 channels; the
    augmentation level as class_labels through a timestep class embedding)."""
    from diffusers import IFSuperResolutionPipeline

    t5 = character_t5_tokenizer()
    return IFSuperResolutionPipeline(
        tokenizer=t5,
        text_encoder=seeded("text_encoder", lambda: tiny_t5(t5)),
        unet=seeded("unet", lambda: tiny_if_unet(in_channels=6, class_embed_type="timestep")),
        scheduler=if_scheduler(),
        image_noising_scheduler=if_image_noising_scheduler(),
        safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False,
    )
