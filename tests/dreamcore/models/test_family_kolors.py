"""Kolors is told from SDXL by its model_index.json (KolorsPipeline, a ChatGLM text encoder), though its UNet is
SDXL-shaped (text_time added conditioning) and cross-attends to 2048-wide states as the SDXL base does."""

from __future__ import annotations

from dreamcore.models.families import family_from_configs

# Kwai-Kolors/Kolors-diffusers' model_index.json and the UNet config keys detection reads.
KOLORS_INDEX = {"_class_name": "KolorsPipeline", "force_zeros_for_empty_prompt": False,
                "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": ["kolors", "ChatGLMModel"],
                "tokenizer": ["kolors", "ChatGLMTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
                "vae": ["diffusers", "AutoencoderKL"]}
KOLORS_UNET = {"addition_embed_type": "text_time", "cross_attention_dim": 2048, "encoder_hid_dim": 4096,
               "encoder_hid_dim_type": "text_proj", "projection_class_embeddings_input_dim": 5632}


def test_kolors_is_detected_before_the_sdxl_families_that_its_unet_would_match():
    assert family_from_configs(KOLORS_INDEX, lambda folder: KOLORS_UNET, where="kolors").name == "kolors"
    # Without the pipeline class, its ChatGLM text encoder still says Kolors.
    unnamed = {k: v for k, v in KOLORS_INDEX.items() if k != "_class_name"}
    assert family_from_configs(unnamed, lambda folder: KOLORS_UNET, where="kolors").name == "kolors"
    sdxl = {"_class_name": "StableDiffusionXLPipeline", "text_encoder": ["transformers", "CLIPTextModel"]}
    assert family_from_configs(sdxl, lambda folder: KOLORS_UNET, where="sdxl").name == "sdxl"
