"""Weights in the formats people load: diffusers LoRA, kohya/ComfyUI LoRA, LyCORIS, a diffusers folder.

Which LoRA formats a family gets is `family.lora_exports`: diffusers_lora for all (the family pipeline's
own `save_lora_weights`, `<denoiser>_lora_layers`), kohya_lora for UNet families (lora_unet_... keys of
the SD/SDXL UNet), comfyui_lora for Flux (kohya sd-scripts' Flux layout, train/comfyui_flux.py).
Everything is written with the libraries' own savers into a temporary local folder and then copied
into the artifact store (local or s3) file by file, atomically; safetensors files with their metadata in
canonical order, so the same training exports the same bytes from any process.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig
    from dreamcore.models import ModelFamily
    from dreamcore.storage import ArtifactStore
    from dreamcore.train.adapters import Adapter
    from dreamcore.train.base import BaseModel

DIFFUSERS_LORA_FILE = "pytorch_lora_weights.safetensors"
KOHYA_LORA_FILE = "lora_kohya.safetensors"
LYCORIS_FILE = "lycoris.safetensors"


def export_weights(
    adapter: Adapter, base: BaseModel, config: TrainingConfig, store: ArtifactStore, folder: str
) -> dict[str, str]:
    """Write the trained weights under `folder` in every format that fits the adapter; name -> relative path."""
    with tempfile.TemporaryDirectory(prefix="dreamcore-export-") as tmp:
        local = Path(tmp)
        if adapter.kind == "lora":
            writers = {"diffusers_lora": lambda: _diffusers_lora(adapter, base.family, local / "diffusers"),
                       "kohya_lora": lambda: _kohya_lora(adapter, config, local / "kohya"),
                       "comfyui_lora": lambda: _comfyui_flux_lora(adapter, config, local / "comfyui")}
            files = {name: writers[name]() for name in base.family.lora_exports}
        elif adapter.kind == "lycoris":
            files = {"lycoris": _lycoris(adapter, local / "lycoris")}
        else:
            files = {"pipeline": _full_pipeline(adapter, base, config, local / "pipeline")}
        return {name: _upload(store, path, local, folder) for name, path in files.items()}


def export_ema_weights(adapter: Adapter, base: BaseModel, config: TrainingConfig, store: ArtifactStore,
                       folder: str) -> dict[str, str]:
    """The EMA weights (already applied to `adapter`) beside the raw ones: adapters in every format, full as the
    denoiser's folder (`unet` or `transformer`; its name in the result stays "unet")."""
    if adapter.kind != "full":
        return export_weights(adapter, base, config, store, folder)
    with tempfile.TemporaryDirectory(prefix="dreamcore-export-") as tmp:
        local = Path(tmp) / base.family.denoiser
        adapter.unet.save_pretrained(local, safe_serialization=True)
        return {"unet": _upload(store, local, Path(tmp), folder)}


def _diffusers_lora(adapter: Adapter, family: ModelFamily, target: Path) -> Path:
    import diffusers
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    denoiser = adapter.unet
    layers = get_peft_model_state_dict(denoiser)
    if family.denoiser == "unet":
        # The UNet file keeps diffusers' older to_q.lora.down names (SD/SDXL exports as before); transformer
        # loaders read peft's lora_A/lora_B names, as diffusers' SD3/Flux DreamBooth scripts save them.
        layers = convert_state_dict_to_diffusers(layers)
    pipeline_class = getattr(diffusers, family.pipeline_class)
    # The adapter metadata carries lora_alpha, so a loader scales the LoRA exactly as it was trained.
    pipeline_class.save_lora_weights(
        target,
        weight_name=DIFFUSERS_LORA_FILE,
        safe_serialization=True,
        **{f"{family.denoiser}_lora_layers": {k: v.detach().float().cpu().contiguous() for k, v in layers.items()},
           f"{family.denoiser}_lora_adapter_metadata": _stable_adapter_metadata(denoiser.peft_config["default"])},
    )
    return target


def _stable_adapter_metadata(peft_config) -> dict:
    """peft's config as metadata that is the same in every process: diffusers writes its sets
    (target_modules) as lists in hash order, so they are sorted lists here. lora_dropout is written as 0: it
    is a training setting, and a pipeline loading the LoRA with it would draw with dropout on (peft's new
    dropout modules start in training mode), so the same prompt and seed would not give the same image."""
    from dreamcore.storage.digests import canonical_metadata_value

    return canonical_metadata_value(peft_config.to_dict() | {"lora_dropout": 0.0})


def _kohya_lora(adapter: Adapter, config: TrainingConfig, target: Path) -> Path:
    import torch
    from diffusers.utils import convert_state_dict_to_kohya
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    peft_state = {f"unet.{k}": v for k, v in get_peft_model_state_dict(adapter.unet).items()}
    kohya = convert_state_dict_to_kohya(peft_state)
    # diffusers writes alpha = rank; kohya loaders scale by alpha / rank, so write the trained alpha.
    alpha = float(config.lora_alpha or config.lora_rank)
    kohya = {k: (torch.tensor(alpha) if k.endswith(".alpha") else v.detach().float().cpu().contiguous())
             for k, v in kohya.items()}
    target.mkdir(parents=True, exist_ok=True)
    save_file(kohya, target / KOHYA_LORA_FILE, metadata={"ss_network_dim": str(config.lora_rank),
                                                         "ss_network_alpha": str(alpha)})
    return target


def _comfyui_flux_lora(adapter: Adapter, config: TrainingConfig, target: Path) -> Path:
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    from dreamcore.train.comfyui_flux import COMFYUI_FLUX_LORA_FILE, comfyui_flux_lora

    alpha = float(config.lora_alpha or config.lora_rank)
    tensors = comfyui_flux_lora(adapter.unet, get_peft_model_state_dict(adapter.unet), alpha)
    target.mkdir(parents=True, exist_ok=True)
    save_file(tensors, target / COMFYUI_FLUX_LORA_FILE, metadata={"ss_network_dim": str(config.lora_rank),
                                                                  "ss_network_alpha": str(alpha)})
    return target


def _lycoris(adapter: Adapter, target: Path) -> Path:
    import json

    import torch

    target.mkdir(parents=True, exist_ok=True)
    metadata = {"lycoris_config": json.dumps(adapter.lycoris_spec or {}, sort_keys=True)}
    adapter.network.save_weights(str(target / LYCORIS_FILE), torch.float32, metadata)
    return target


def _full_pipeline(adapter: Adapter, base: BaseModel, config: TrainingConfig, target: Path) -> Path:
    import torch

    from dreamcore.models import load_pipeline

    unet = adapter.unet
    dtype = next(unet.parameters()).dtype
    pipe = load_pipeline(config.pretrained_model_name_or_path, base.family,
                         components={base.family.denoiser: unet.to(torch.float32)})
    pipe.save_pretrained(target, safe_serialization=True)
    unet.to(dtype)
    return target


def _upload(store: ArtifactStore, path: Path, local_root: Path, folder: str) -> str:
    """Copy a local file or folder into the store under `folder` (safetensors laid out canonically); returns its
    relative path there."""
    from dreamcore.storage.digests import canonical_safetensors

    relative = path.relative_to(local_root).as_posix()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        data = file.read_bytes()
        store.write_bytes(f"{folder}/{file.relative_to(local_root).as_posix()}",
                          canonical_safetensors(data) if file.suffix == ".safetensors" else data)
    return f"{folder}/{relative}"
