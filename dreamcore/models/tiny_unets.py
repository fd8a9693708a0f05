"""Parts of the tiny random-weight UNet pipelines (SD 1.x/2.x, SDXL, the refiner): CLIP text encoders, UNets,
a 4-channel VAE and the DDPM scheduler, 64 px images <-> 32x32x4 latents (docs/PLATFORM.md, "Tiny models").

Each family's tiny pipeline is built in its own module (models/families/) from these; `seeded(component,
build)` builds one component under its own seed (models/tiny.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

PredictionType = Literal["epsilon", "v_prediction"]
Seeded = Callable[[str, Callable[[], object]], object]

# Sizes shared by the tiny models (see docs/PLATFORM.md, "Tiny models").
TEXT_HIDDEN = 32
_TIME_EMBED_DIM = 8


def clip_text_config(tokenizer: CLIPTokenizer, **overrides):
    """A 2-layer CLIP text config TEXT_HIDDEN wide whose special tokens match `tokenizer`."""
    from transformers import CLIPTextConfig

    settings = dict(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=37,
        projection_dim=TEXT_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        # Must match the tokenizer: the pooled output is read at the first EOS position.
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextConfig(**{**settings, **overrides})


def text_encoder(seeded: Seeded, component: str, tokenizer: CLIPTokenizer, with_projection: bool = False):
    """A tiny CLIP text encoder (with a projection: the pooled output SDXL's second encoder gives)."""
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    model_class = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    config = clip_text_config(tokenizer)
    return seeded(component, lambda: model_class(config))


def unet(seeded: Seeded, cross_attention_dim: int, **extra):
    """A tiny UNet2DConditionModel (two blocks, one cross-attending) over 32x32x4 latents."""
    from diffusers import UNet2DConditionModel

    return seeded(
        "unet",
        lambda: UNet2DConditionModel(
            sample_size=32,
            in_channels=4,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=8,
            cross_attention_dim=cross_attention_dim,
            **extra,
        ),
    )


def sdxl_unet(seeded: Seeded, cross_attention_dim: int, time_ids: int):
    """SDXL conditioning: pooled text embedding (32) + `time_ids` Fourier-embedded size/crop ids."""
    return unet(
        seeded,
        cross_attention_dim,
        addition_embed_type="text_time",
        addition_time_embed_dim=_TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=time_ids * _TIME_EMBED_DIM + TEXT_HIDDEN,
        use_linear_projection=True,
    )


def vae(seeded: Seeded, scaling_factor: float):
    """A tiny 4-channel AutoencoderKL (64 px <-> 32x32x4) with the family's latent scaling."""
    from diffusers import AutoencoderKL

    return seeded(
        "vae",
        lambda: AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            block_out_channels=(32, 64),
            latent_channels=4,
            sample_size=64,
            scaling_factor=scaling_factor,
        ),
    )


def ddpm_scheduler(prediction_type: PredictionType):
    """SD's DDPM noise schedule (scaled linear betas, 1000 steps) predicting `prediction_type`."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        steps_offset=1,
        timestep_spacing="leading",
        prediction_type=prediction_type,
    )
