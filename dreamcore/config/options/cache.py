"""VAE-latent and text-embed caches: precision, batch sizes, shard size and bucket alignment."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class CacheOptions(BaseModel):
    """VAE-latent and text-embed caches: precision, batch sizes, shard size and bucket alignment."""

    cache_dtype: Literal["fp16", "bf16"] = Field(
        "fp16", description="Precision of cached VAE latents and text embeddings (fp16 or bf16)."
    )
    vae_batch_size: int = Field(4, ge=1, description="Images per VAE forward pass while caching latents.")
    text_embed_batch_size: int = Field(16, ge=1, description="Captions per text-encoder pass while caching.")
    cache_shard_size: int = Field(
        64, ge=1, description="Rows per Parquet cache shard; an interrupted cache stage redoes at most one shard."
    )
    aspect_bucket_alignment: Literal[8, 16, 32, 64] = Field(
        64, description="Bucket edges are multiples of this many pixels."
    )
    tokenizer_max_length: int | None = Field(
        None, ge=1, description="T5 sequence length (tokens) of SD3, Flux and Chroma captions (Lumina2: Gemma2's, "
        "its system prompt included) in the text cache and when drawing; default: the pipeline's (SD3 256, Flux "
        "512, Chroma 512, Lumina2 256). Qwen-Image: the most Qwen2.5-VL caption tokens (default 512, what "
        "QwenImagePipeline draws with). SD 1/2 and SDXL ignore it (CLIP: 77), Kolors too (ChatGLM3: 256, the "
        "length KolorsPipeline draws with)."
    )
