"""Look-alike mode: rank names the user supplies (celebrities, say) as the subject's stand-in.

Training on a name the model already draws close to the subject needs less compute than
teaching a rare token from nothing. A name is good when the model reads "a photo of NAME" as
the class (a person, a dog) and, given subject photos and a CLIP model, when CLIP puts that
prompt near the photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dreamcore.tokens.encoders import TextEncoder, default_device, text_transformer

SCORE_DECIMALS = 6
LOOKALIKE_TEMPLATE = "a photo of {name}"


@dataclass(frozen=True)
class LookalikeCandidate:
    """One name: tokens per tokenizer, similarity to the class prompt and to the subject images."""

    name: str
    tokens: dict[str, int]
    class_similarity: float
    image_similarity: float | None
    score: float


def rank_lookalikes(
    encoders: Sequence[TextEncoder],
    class_word: str,
    names: Sequence[str],
    image_similarities: Sequence[float] | None = None,
    image_weight: float = 0.5,
    template: str = LOOKALIKE_TEMPLATE,
) -> list[LookalikeCandidate]:
    """Rank names by score, highest first: the class similarity, or with images
    (1 - image_weight) * class similarity + image_weight * image similarity.

    Class similarity is the cosine between the pooled text-encoder outputs (end-of-text state of the
    final layer) of "a photo of NAME" and "a photo of CLASS", averaged over the model's encoders.
    """
    names = _clean_names(names)
    if not class_word.strip():
        raise ValueError("look-alike ranking needs the class word (man, woman, dog, ...)")
    if image_similarities is not None and len(image_similarities) != len(names):
        raise ValueError(f"{len(image_similarities)} image similarities for {len(names)} names")
    if not 0.0 <= image_weight <= 1.0:
        raise ValueError(f"image_weight must be between 0 and 1, got {image_weight}")
    prompts = [template.format(name=name) for name in names]
    class_prompt = template.format(name=class_word.strip())
    similarity = [0.0] * len(names)
    for encoder in encoders:
        pooled = pooled_text_states(encoder, [class_prompt, *prompts])
        cosines = _cosines(pooled[1:], pooled[:1])
        similarity = [total + value / len(encoders) for total, value in zip(similarity, cosines)]
    ranked = []
    for i, name in enumerate(names):
        image = image_similarities[i] if image_similarities is not None else None
        score = similarity[i] if image is None else (1 - image_weight) * similarity[i] + image_weight * image
        tokens = {e.tokenizer_name: len(e.tokenizer(name, add_special_tokens=False)["input_ids"]) for e in encoders}
        ranked.append(
            LookalikeCandidate(
                name=name,
                tokens=tokens,
                class_similarity=round(similarity[i], SCORE_DECIMALS),
                image_similarity=None if image is None else round(image, SCORE_DECIMALS),
                score=round(score, SCORE_DECIMALS),
            )
        )
    ranked.sort(key=lambda c: (-c.score, c.name))
    return ranked


def pooled_text_states(encoder: TextEncoder, prompts: Sequence[str]) -> Any:
    """[N, H] final-layer (layer-normed) states at each prompt's end-of-text token."""
    import torch

    tokens = encoder.tokenizer(list(prompts), padding=True, truncation=True, return_tensors="pt")
    device = next(encoder.model.parameters()).device
    with torch.inference_mode():
        hidden = text_transformer(encoder.model)(input_ids=tokens["input_ids"].to(device)).last_hidden_state
    # Right padding and a causal encoder: the end-of-text token is the last real token.
    last = tokens["attention_mask"].sum(dim=1) - 1
    return hidden[torch.arange(len(prompts)), last.to(device)].float().cpu()


def load_clip(path: str | Path, device: str | None = None) -> tuple[Any, Any]:
    """A CLIPModel and its CLIPProcessor from one local folder (never downloads)."""
    from transformers import CLIPModel, CLIPProcessor

    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder}: not a CLIP model folder (config.json missing); give a local CLIPModel folder"
        )
    model = CLIPModel.from_pretrained(folder).to(device or default_device()).eval()
    return model, CLIPProcessor.from_pretrained(folder)


def clip_image_similarities(
    clip: tuple[Any, Any], image_paths: Sequence[str | Path], names: Sequence[str], template: str = LOOKALIKE_TEMPLATE
) -> list[float]:
    """Cosine between CLIP's embedding of "a photo of NAME" and the mean embedding of the subject images."""
    import torch

    from dreamcore.data.images import load_rgb

    model, processor = clip
    if not image_paths:
        raise ValueError("no subject images given for the CLIP comparison")
    device = next(model.parameters()).device
    images = [load_rgb(Path(path).read_bytes()) for path in image_paths]
    prompts = [template.format(name=name) for name in _clean_names(names)]
    with torch.inference_mode():
        pixels = processor(images=images, return_tensors="pt")["pixel_values"].to(device)
        image_features = _features(model.get_image_features(pixel_values=pixels))
        text = processor.tokenizer(prompts, padding=True, truncation=True, return_tensors="pt").to(device)
        text_features = _features(model.get_text_features(**text))
    subject = torch.nn.functional.normalize(image_features.float(), dim=-1).mean(dim=0, keepdim=True)
    return _cosines(text_features.float().cpu(), subject.cpu())


def _features(output: Any) -> Any:
    # transformers 5 returns a model output with the projected features as pooler_output.
    return output if hasattr(output, "dim") else output.pooler_output


def _cosines(rows: Any, reference: Any) -> list[float]:
    import torch

    return torch.nn.functional.cosine_similarity(rows, reference, dim=-1).tolist()


def _clean_names(names: Sequence[str]) -> list[str]:
    cleaned = list(dict.fromkeys(" ".join(name.split()) for name in names if name.strip()))
    if not cleaned:
        raise ValueError("no candidate names given: pass names (e.g. celebrities who look like the subject)")
    return cleaned
