"""DeepFloyd IF stage I: a pixel-space cascade's first stage. Its UNet denoises 64x64 RGB pixels (no VAE:
the caches hold the cropped pixels in [-1, 1]) conditioned on T5 states, and predicts noise beside a learned
variance (6 output channels); training takes the noise half, as diffusers' own IF DreamBooth training does.

Everything IF-only is in this package: the denoiser call and caption encoding (here), the tiny model (tiny.py);
it owns no config keys (its flavours are in config/options/model.py's MODEL_FLAVOURS).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamcore.models.families.captions import CaptionSettings, EncodedCaptions
from dreamcore.models.families.denoisers import Conditioning
from dreamcore.models.families.deepfloyd.tiny import build_deepfloyd
from dreamcore.models.families.family import ModelFamily

# What diffusers' DreamBooth LoRA script trains on IF's UNet: attention and its added (text) key/value projections.
IF_LORA_TARGET_MODULES = ("to_k", "to_q", "to_v", "to_out.0", "add_k_proj", "add_v_proj")
# dreamcore draws without IF's NSFW checker and watermarker (as it does without SD's safety checker).
NO_CHECKERS = {"safety_checker": None, "feature_extractor": None, "watermarker": None,
               "requires_safety_checker": False}


def is_deepfloyd_stage_one(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """An IFPipeline folder (stage I: the text-to-image 64 px model)."""
    return index.get("_class_name") == "IFPipeline"


def predict_deepfloyd(unet, noisy, timesteps, conditioning: Conditioning):
    """The noise half [B, 3, H, W] of IF's UNet output (noise and learned variance, [B, 6, H, W]): the loss is on
    the noise and the variance half is left untrained, as diffusers' train_dreambooth_lora.py does (its training
    loop's `torch.chunk(model_pred, 2, dim=1)`); so trained weights draw with the scheduler's fixed_small variance
    (drawing.pipelines.fixed_variance, as its log_validation does)."""
    prediction = unet(noisy, timesteps, encoder_hidden_states=conditioning.prompt_embeds, return_dict=False)[0]
    return prediction[:, : noisy.shape[1]]


def deepfloyd_lora_targets(config) -> list[str]:
    """peft_lora_target_modules when set, else the attention and added key/value projections."""
    return list(config.peft_lora_target_modules or IF_LORA_TARGET_MODULES)


def encode_deepfloyd_captions(pipe, captions: list[str], settings: CaptionSettings) -> EncodedCaptions:
    """T5 states [B, 77, D] as IFPipeline.encode_prompt makes them (77 tokens, the T5 attention mask applied,
    clean_caption off), and that mask [B, 77] (1 = real token)."""
    import torch

    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(captions, do_classifier_free_guidance=False, num_images_per_prompt=1,
                                       device=pipe._execution_device, clean_caption=False)
    # The mask of the same tokenizer call encode_prompt makes (its preprocessing lower-cases and strips).
    texts = pipe._text_preprocessing(captions, clean_caption=False)
    tokens = pipe.tokenizer(texts, padding="max_length", max_length=embeds.shape[1], truncation=True,
                            add_special_tokens=True, return_tensors="pt")
    return EncodedCaptions(embeds.float().cpu(), None, tokens.attention_mask.to(torch.uint8))


FAMILY = ModelFamily(
    name="deepfloyd",
    config_names=("deepfloyd",),
    detects=is_deepfloyd_stage_one,
    pipeline_class="IFPipeline",
    text_components=("text_encoder", "tokenizer"),
    pipeline_options=NO_CHECKERS,
    latent_vae=None,  # pixel space: the caches hold pixels, previews need no decoder
    lora_layouts={},  # diffusers_lora only
    # class images draw with IF's own DDPM (learned variance); a swapped-in sampler would not read the variance
    ddpm_samplers=False,
    encode_captions=encode_deepfloyd_captions,
    predict=predict_deepfloyd,
    lora_targets=deepfloyd_lora_targets,
    tiny_model=build_deepfloyd,
)
