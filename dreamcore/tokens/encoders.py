"""A model's tokenizers and text encoders, without the rest of the pipeline, and a fast prompt scan.

The finder needs only what reads the prompt: tokenizer/ + text_encoder/ (SD) and also
tokenizer_2/ + text_encoder_2/ (SDXL), loaded with transformers from those subfolders.
torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dreamcore.models import check_tokenizer, detect_family, local_model_folder, model_fingerprint

_SLOTS = (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"))


@dataclass
class TextEncoder:
    """One tokenizer and the CLIP text encoder it feeds, plus which hidden layer the UNet reads.

    `hidden_layer` -1 is the final (layer-normed) output, as SD 1/2 use; -2 is the penultimate
    layer, as SDXL uses.
    """

    name: str
    tokenizer: Any
    model: Any
    hidden_layer: int = -1
    tokenizer_name: str = "tokenizer"


def load_text_encoders(path_or_id: str | Path, device: str | None = None) -> list[TextEncoder]:
    """Load every tokenizer + text encoder pair of a pipeline folder (or cached hub id), in eval mode."""
    import transformers

    folder = local_model_folder(path_or_id)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    hidden_layer = detect_family(folder).prompt_hidden_layer
    device = device or default_device()
    encoders = []
    for tokenizer_name, encoder_name in _SLOTS:
        if not _present(index, encoder_name):
            continue
        tokenizer = transformers.CLIPTokenizer.from_pretrained(folder / tokenizer_name)
        model_class = getattr(transformers, index[encoder_name][1])
        model = model_class.from_pretrained(folder / encoder_name).to(device).eval()
        check_tokenizer(tokenizer, model, where=f"{path_or_id} ({tokenizer_name})")
        encoders.append(TextEncoder(encoder_name, tokenizer, model, hidden_layer, tokenizer_name))
    if not encoders:
        raise ValueError(f"{path_or_id}: model_index.json names no text_encoder or text_encoder_2")
    return encoders


def text_encoders_fingerprint(path_or_id: str | Path) -> str:
    """A digest of the tokenizer and text-encoder folders only: what token scores depend on."""
    folder = local_model_folder(path_or_id)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    parts = [
        f"{name}={model_fingerprint(folder, name)}" for slot in _SLOTS for name in slot if _present(index, slot[1])
    ]
    return "+".join(parts)


def default_device() -> str:
    """cuda when a GPU is visible, else cpu."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def text_transformer(model: Any) -> Any:
    """The CLIPTextModel inside a text encoder (CLIPTextModelWithProjection wraps one as text_model)."""
    return getattr(model, "text_model", model)


def _present(index: dict, name: str) -> bool:
    entry = index.get(name)
    return isinstance(entry, list) and entry[0] is not None


class PrefixCachedPrompts:
    """Encodes many prompts `prefix + middle + suffix` that share one prefix, computing it once.

    CLIP's text encoder is causal, so the prefix ("<bos> a photo of") reads the same in every
    prompt: its keys and values are computed once per layer and only the middle and suffix
    tokens (3 instead of 7 positions for "a photo of <token> <class>") run per prompt.
    """

    def __init__(self, encoder: TextEncoder, prefix_ids: list[int]) -> None:
        import torch

        text_model = text_transformer(encoder.model)
        self.text_model = text_model
        self.hidden_layer = encoder.hidden_layer
        self.device = next(encoder.model.parameters()).device
        # Layers after the one the UNet reads never matter: skip them.
        layers = list(text_model.encoder.layers)
        self.layers = layers if self.hidden_layer == -1 else layers[: len(layers) + self.hidden_layer + 1]
        ids = torch.tensor([prefix_ids], device=self.device)
        with torch.inference_mode():
            states = text_model(input_ids=ids, output_hidden_states=True).hidden_states
            # hidden_states[i] is the input of layer i: its keys/values are what later tokens attend to.
            self.prefix_kv = [self._keys_values(layer, states[i]) for i, layer in enumerate(self.layers)]
        self.prefix_length = len(prefix_ids)

    def encode(self, rest_ids: Any) -> Any:
        """Hidden states [B, T, H] of the UNet's layer for the tokens after the prefix (`rest_ids` [B, T])."""
        import torch

        rest_ids = rest_ids.to(self.device)
        batch, length = rest_ids.shape
        total = self.prefix_length + length
        # Each new token sees the whole prefix and the new tokens up to itself.
        allowed = torch.ones(length, total, dtype=torch.bool, device=self.device)
        allowed[:, self.prefix_length :] = allowed[:, self.prefix_length :].tril()
        embeddings = self.text_model.embeddings
        with torch.inference_mode():
            positions = torch.arange(self.prefix_length, total, device=self.device)
            hidden = embeddings.token_embedding(rest_ids) + embeddings.position_embedding(positions)[None]
            for layer, (keys, values) in zip(self.layers, self.prefix_kv):
                keys, values = keys.expand(batch, -1, -1, -1), values.expand(batch, -1, -1, -1)
                hidden = self._layer(layer, hidden, keys, values, allowed)
            if self.hidden_layer == -1:
                hidden = self.text_model.final_layer_norm(hidden)
        return hidden

    @staticmethod
    def _keys_values(layer, hidden):
        """Keys and values [B, heads, T, head_dim] that `layer` computes from its input `hidden`."""
        normed = layer.layer_norm1(hidden)
        return _heads(layer.self_attn.k_proj, normed, layer), _heads(layer.self_attn.v_proj, normed, layer)

    @staticmethod
    def _layer(layer, hidden, prefix_keys, prefix_values, allowed):
        """CLIPEncoderLayer.forward for the new tokens, attending to cached prefix keys/values."""
        import torch
        import torch.nn.functional as F

        attention = layer.self_attn
        normed = layer.layer_norm1(hidden)
        queries = _heads(attention.q_proj, normed, layer)
        keys = torch.cat([prefix_keys, _heads(attention.k_proj, normed, layer)], dim=2)
        values = torch.cat([prefix_values, _heads(attention.v_proj, normed, layer)], dim=2)
        attended = F.scaled_dot_product_attention(queries, keys, values, attn_mask=allowed, scale=attention.scale)
        attended = attention.out_proj(attended.transpose(1, 2).reshape(hidden.shape))
        hidden = hidden + attended
        return hidden + layer.mlp(layer.layer_norm2(hidden))


def _heads(projection, normed, layer):
    """One attention projection of `normed` [B, T, H], split into heads: [B, heads, T, head_dim]."""
    attention = layer.self_attn
    shape = (*normed.shape[:-1], attention.num_heads, attention.head_dim)
    return projection(normed).view(shape).transpose(1, 2)
