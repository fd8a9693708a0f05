"""One loading path for tiny model folders, real model folders and Hugging Face hub ids: the family's
stock diffusers pipeline, with a loud check of its tokenizers.

Weights come from the local cache or from an explicit `load_pipeline` (see models/files.py).
torch, diffusers and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamcore.models.families import detect_family
from dreamcore.models.files import pipeline_source

if TYPE_CHECKING:
    from dreamcore.models.families import ModelFamily

# A byte-level BPE needs at least its 256 byte symbols to spell arbitrary text (our tiny
# tokenizer has 514 entries, real CLIP 49408). A pipeline folder without tokenizer files loads
# under HF_HUB_OFFLINE=1 *without an error* as a 2-entry tokenizer that maps every word to
# <|endoftext|>; anything below this bound is that broken fallback, never a usable vocabulary.
MIN_TOKENIZER_VOCAB = 256


def load_pipeline(
    path_or_id: str | Path,
    family: ModelFamily | None = None,
    torch_dtype: Any = None,
    components: Mapping[str, Any] | None = None,
):
    """Load the diffusers pipeline class of `family` (detected when None) and check its tokenizers.

    `components` go to `from_pretrained`: replacement modules (vae=..., scheduler=...), None to skip
    one, or options such as variant="fp16"; the family's own options (SD 1/2: no safety checker) come first.
    """
    family = family or detect_family(path_or_id)
    source = pipeline_source(path_or_id)
    import diffusers

    options = dict(family.pipeline_options) | dict(components or {})
    if torch_dtype is not None:
        options["dtype"] = torch_dtype
    pipeline_class = getattr(diffusers, family.pipeline_class)
    pipe = pipeline_class.from_pretrained(source, **options)
    check_tokenizers(pipe)
    return pipe


def check_tokenizers(pipe) -> None:
    """Fail loudly if a pipeline's tokenizer is the silent 2-token fallback or does not fit its encoder."""
    where = getattr(pipe, "name_or_path", None) or "the pipeline"
    for tokenizer_name, encoder_name in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")):
        tokenizer = getattr(pipe, tokenizer_name, None)
        encoder = getattr(pipe, encoder_name, None)
        if tokenizer is None and encoder is not None:
            raise ValueError(f"{where}: {encoder_name} is loaded but {tokenizer_name} is missing")
        if tokenizer is not None:
            check_tokenizer(tokenizer, encoder, where=f"{where} ({tokenizer_name})")


def check_tokenizer(tokenizer, text_encoder=None, where: str | None = None) -> None:
    """Raise ValueError unless `tokenizer` has a real vocabulary that fits `text_encoder` (if given)."""
    where = where or getattr(tokenizer, "name_or_path", None) or "tokenizer"
    size = len(tokenizer)
    if size < MIN_TOKENIZER_VOCAB:
        raise ValueError(
            f"{where}: tokenizer has only {size} entries (need >= {MIN_TOKENIZER_VOCAB}); its files "
            "(tokenizer.json or vocab.json + merges.txt) are probably missing from "
            f"{getattr(tokenizer, 'name_or_path', '?')!r}. Copy them into the model folder or "
            "download the model completely"
        )
    if text_encoder is None:
        return
    config = text_encoder.config.get_text_config()  # a vision-language encoder's (Qwen2.5-VL) text part
    if size > config.vocab_size:
        raise ValueError(
            f"{where}: tokenizer has {size} entries but the text encoder's embedding has only "
            f"{config.vocab_size}; tokenizer and text encoder come from different models"
        )
    # None: T5's relative positions have no limit, nor have rotary ones (Qwen2.5-VL: the pipeline truncates itself)
    positions = None if getattr(config, "rope_parameters", None) else getattr(config, "max_position_embeddings", None)
    if positions is not None and tokenizer.model_max_length > positions:
        raise ValueError(
            f"{where}: tokenizer model_max_length {tokenizer.model_max_length} exceeds the text "
            f"encoder's {positions} positions; tokenizer_config.json is missing or wrong"
        )
