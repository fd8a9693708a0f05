"""Flux.2 is told from Flux.1 (whose detector takes any pipeline class starting with "Flux") by its pipelines
(Flux2Pipeline for dev, Flux2KleinPipeline for klein) or its transformer; each folder loads with its own pipeline
class; its cached latents are the normalised 2x2 patches its pipelines start from."""

from __future__ import annotations

import torch

from dreamcore.models import load_pipeline
from dreamcore.models.families import family_from_configs
from dreamcore.models.families.flux2 import FAMILY

# black-forest-labs/FLUX.2-dev's and FLUX.2-klein-base-4B's model_index.json (the keys detection reads).
DEV_INDEX = {"_class_name": "Flux2Pipeline", "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
             "text_encoder": ["transformers", "Mistral3ForConditionalGeneration"],
             "tokenizer": ["transformers", "PixtralProcessor"], "transformer": ["diffusers", "Flux2Transformer2DModel"],
             "vae": ["diffusers", "AutoencoderKLFlux2"]}
KLEIN_INDEX = DEV_INDEX | {"_class_name": "Flux2KleinPipeline", "is_distilled": False,
                           "text_encoder": ["transformers", "Qwen3ForCausalLM"],
                           "tokenizer": ["transformers", "Qwen2TokenizerFast"]}
TRANSFORMER = {"_class_name": "Flux2Transformer2DModel", "guidance_embeds": True}


def test_flux2_flavours_are_detected_before_flux1():
    for index in (DEV_INDEX, KLEIN_INDEX):
        assert family_from_configs(index, lambda folder: TRANSFORMER, where="flux2").name == "flux2"
    unnamed = {k: v for k, v in DEV_INDEX.items() if k != "_class_name"}
    assert family_from_configs(unnamed, lambda folder: TRANSFORMER, where="flux2").name == "flux2"
    flux1 = {"_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"]}
    assert family_from_configs(flux1, lambda folder: {"_class_name": "FluxTransformer2DModel"},
                               where="flux1").name == "flux"


def test_the_tiny_klein_loads_with_its_pipeline_and_caches_what_the_pipeline_encodes(tiny_models):
    pipe = load_pipeline(tiny_models["flux2"])
    assert type(pipe).__name__ == "Flux2KleinPipeline" and FAMILY.pipeline_class == "Flux2KleinPipeline"
    pixels = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        cached = FAMILY.encode_latents(pipe.vae, pixels)
        patches = pipe._encode_vae_image(pixels, generator=None)  # what the pipeline conditions on: [1, 4C, 16, 16]
    assert cached.shape == (1, 16, 32, 32)
    assert torch.allclose(pipe._patchify_latents(cached), patches, atol=1e-5)
