"""Chroma is told from Flux.1 (its packing, VAE and T5 are Flux's) and Lumina2 from the rest by model_index.json's
pipeline class, or without one by the transformer's class."""

from __future__ import annotations

import pytest

from dreamcore.models.families import family_from_configs

# lodestones/Chroma1-Base's and Alpha-VLLM/Lumina-Image-2.0's model_index.json (the parts detection reads).
CHROMA_INDEX = {"_class_name": "ChromaPipeline", "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
                "text_encoder": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "T5Tokenizer"],
                "transformer": ["diffusers", "ChromaTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}
LUMINA2_INDEX = {"_class_name": "Lumina2Pipeline", "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
                 "text_encoder": ["transformers", "Gemma2Model"], "tokenizer": ["transformers", "GemmaTokenizerFast"],
                 "transformer": ["diffusers", "Lumina2Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}
FLUX_INDEX = {"_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"]}


@pytest.mark.parametrize(("index", "transformer", "family"), [
    (CHROMA_INDEX, "ChromaTransformer2DModel", "chroma"),
    (LUMINA2_INDEX, "Lumina2Transformer2DModel", "lumina2"),
    (FLUX_INDEX, "FluxTransformer2DModel", "flux"),
])
def test_the_pipeline_class_or_else_the_transformer_names_the_family(index, transformer, family):
    config = {"_class_name": transformer}
    assert family_from_configs(index, lambda folder: config if folder == "transformer" else {}, where=family).name \
        == family
    unnamed = {k: v for k, v in index.items() if k != "_class_name"}
    assert family_from_configs(unnamed, lambda folder: config if folder == "transformer" else {}, where=family).name \
        == family
