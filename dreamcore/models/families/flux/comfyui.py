"""A Flux peft LoRA in the key layout ComfyUI loads: kohya sd-scripts' Flux layout.

Keys are `lora_unet_<BFL module>` with the original Black Forest Labs module names (dots as
underscores) and `.lora_down.weight` [r, in], `.lora_up.weight` [out, r], `.alpha`:
`lora_unet_double_blocks_0_img_attn_qkv`, `lora_unet_single_blocks_0_linear1`, ... ComfyUI's LoRA
loader maps exactly these names (`lora_unet_` + the model key with `_`), and so does diffusers' kohya
Flux converter. BFL fuses projections that diffusers keeps apart (img/txt q, k, v into `qkv`; a single
block's q, k, v and MLP input into `linear1`): their LoRAs are stacked, down [sum r, in] and a
block-diagonal up [sum out, sum r], which is the same update exactly; the fused alpha is the trained
alpha x the number of parts, so alpha / rank stays the trained scale. A part the LoRA did not train
is a zero block (rank r of zeros), so every fused LoRA has parts x r rows. Outside the blocks,
`proj_out` is BFL's `final_layer.linear` (all+ffs's suffix reaches it), `x_embedder` `img_in`,
`context_embedder` `txt_in`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from dreamcore.models.families.exports import LoraLayout

if TYPE_CHECKING:
    import torch

COMFYUI_FLUX_LORA_FILE = "lora_comfyui.safetensors"

# diffusers module (inside transformer_blocks.N) -> (BFL module inside double_blocks.N, part, parts in it)
_DOUBLE = {
    "attn.to_q": ("img_attn.qkv", 0, ("attn.to_q", "attn.to_k", "attn.to_v")),
    "attn.to_k": ("img_attn.qkv", 1, ("attn.to_q", "attn.to_k", "attn.to_v")),
    "attn.to_v": ("img_attn.qkv", 2, ("attn.to_q", "attn.to_k", "attn.to_v")),
    "attn.add_q_proj": ("txt_attn.qkv", 0, ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj")),
    "attn.add_k_proj": ("txt_attn.qkv", 1, ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj")),
    "attn.add_v_proj": ("txt_attn.qkv", 2, ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj")),
    "attn.to_out.0": ("img_attn.proj", 0, ("attn.to_out.0",)),
    "attn.to_add_out": ("txt_attn.proj", 0, ("attn.to_add_out",)),
    "ff.net.0.proj": ("img_mlp.0", 0, ("ff.net.0.proj",)),
    "ff.net.2": ("img_mlp.2", 0, ("ff.net.2",)),
    "ff_context.net.0.proj": ("txt_mlp.0", 0, ("ff_context.net.0.proj",)),
    "ff_context.net.2": ("txt_mlp.2", 0, ("ff_context.net.2",)),
    "norm1.linear": ("img_mod.lin", 0, ("norm1.linear",)),
    "norm1_context.linear": ("txt_mod.lin", 0, ("norm1_context.linear",)),
}
_LINEAR1 = ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")
_SINGLE = {
    **{name: ("linear1", part, _LINEAR1) for part, name in enumerate(_LINEAR1)},
    "proj_out": ("linear2", 0, ("proj_out",)),
    "norm.linear": ("modulation.lin", 0, ("norm.linear",)),
}
# Outside the blocks (all+ffs's "proj_out" suffix also wraps the final projection).
_TOP = {"proj_out": "final_layer.linear", "x_embedder": "img_in", "context_embedder": "txt_in"}
_BLOCK = re.compile(r"^(transformer_blocks|single_transformer_blocks)\.(\d+)\.(.+)$")


def write_comfyui_lora(transformer, rank: int, alpha: float, target: Path) -> Path:
    """The trained peft LoRA of `transformer` as `target`/lora_comfyui.safetensors (kohya metadata: rank, alpha)."""
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    tensors = comfyui_flux_lora(transformer, get_peft_model_state_dict(transformer), alpha)
    target.mkdir(parents=True, exist_ok=True)
    save_file(tensors, target / COMFYUI_FLUX_LORA_FILE, metadata={"ss_network_dim": str(rank),
                                                                  "ss_network_alpha": str(alpha)})
    return target


def comfyui_flux_lora(transformer, peft_state: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """kohya/ComfyUI Flux LoRA tensors from a peft state dict of `transformer` (keys `<module>.lora_A.weight`)."""
    import torch

    modules = dict(transformer.named_modules())
    loras = _by_module(peft_state)
    fused: dict[str, tuple[str, tuple[str, ...]]] = {}  # BFL key -> (diffusers block prefix, its parts)
    for module in loras:
        if module in _TOP:
            fused[_TOP[module]] = ("", (module,))
            continue
        block, index, inner = _split(module)
        bfl, _, parts = (_DOUBLE if block == "transformer_blocks" else _SINGLE)[inner]
        bfl_block = "double_blocks" if block == "transformer_blocks" else "single_blocks"
        fused[f"{bfl_block}.{index}.{bfl}"] = (f"{block}.{index}.", parts)
    out = {}
    for bfl, (prefix, parts) in sorted(fused.items()):
        rank = next(a.shape[0] for a, _ in loras.values())
        downs, ups = [], []
        for part in parts:
            name = f"{prefix}{part}"
            layer = modules[name]
            down, up = loras.get(name) or (torch.zeros(rank, layer.in_features), torch.zeros(layer.out_features, rank))
            downs.append(down.float())
            ups.append(up.float())
        key = "lora_unet_" + bfl.replace(".", "_")
        out[f"{key}.lora_down.weight"] = torch.cat(downs).contiguous()
        out[f"{key}.lora_up.weight"] = torch.block_diag(*ups).contiguous()
        out[f"{key}.alpha"] = torch.tensor(float(alpha) * len(parts))
    return out


def _by_module(peft_state: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module name -> (lora_A [r, in], lora_B [out, r]) on the CPU."""
    names = {key.rsplit(".lora_A.", 1)[0] for key in peft_state if ".lora_A." in key}
    return {name: (peft_state[f"{name}.lora_A.weight"].detach().cpu(), peft_state[f"{name}.lora_B.weight"].detach().cpu())
            for name in names}


def _split(module: str) -> tuple[str, str, str]:
    match = _BLOCK.match(module)
    inner_map = _DOUBLE if match and match.group(1) == "transformer_blocks" else _SINGLE
    if match is None or match.group(3) not in inner_map:
        raise ValueError(f"the LoRA on Flux module {module!r} has no place in ComfyUI's Flux layout; train it with a "
                         "flux_lora_target preset (mmdit, context, context+ffs, all, all+ffs, ai-toolkit)")
    return match.group(1), match.group(2), match.group(3)


COMFYUI_LORA = LoraLayout(write_comfyui_lora, "comfyui", "ComfyUI: `export/comfyui/lora_comfyui.safetensors` (kohya "
                          "sd-scripts' Flux keys, lora_unet_double_blocks_N_..., fused qkv / linear1, with .alpha).")
