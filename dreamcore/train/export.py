"""Weights in the formats people load: diffusers LoRA, kohya/ComfyUI LoRA, LyCORIS, a diffusers folder.

Which LoRA formats a family gets is `family.lora_exports`: diffusers_lora for all (the family pipeline's
own `save_lora_weights`, `<denoiser>_lora_layers`), then the family's own `lora_layouts` (kohya_lora for
the UNet families, models/families/kohya.py; comfyui_lora for Flux, models/families/flux/comfyui.py).
Everything is written with the libraries' own savers into a temporary local folder and then copied
into the artifact store (local or s3) file by file, atomically; safetensors files with their metadata in
canonical order, so the same training exports the same bytes from any process.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from dreamcore.models import load_pipeline
from dreamcore.storage.digests import canonical_metadata_value, canonical_safetensors

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig
    from dreamcore.models import ModelFamily
    from dreamcore.storage import ArtifactStore
    from dreamcore.train.adapters import Adapter
    from dreamcore.train.base import BaseModel

DIFFUSERS_LORA_FILE = "pytorch_lora_weights.safetensors"
LYCORIS_FILE = "lycoris.safetensors"


def export_weights(
    adapter: Adapter, base: BaseModel, config: TrainingConfig, store: ArtifactStore, folder: str
) -> dict[str, str]:
    """Write the trained weights under `folder` in every format that fits the adapter; name -> relative path."""
    with tempfile.TemporaryDirectory(prefix="dreamcore-export-") as tmp:
        local = Path(tmp)
        if adapter.kind == "lora":
            files = {name: _lora(name, adapter, base.family, config, local) for name in base.family.lora_exports}
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


def _lora(name: str, adapter: Adapter, family: ModelFamily, config: TrainingConfig, local: Path) -> Path:
    """The LoRA export `name` under `local`: diffusers_lora, or one of the family's own layouts."""
    if name == "diffusers_lora":
        return _diffusers_lora(adapter, family, local / "diffusers")
    layout = family.lora_layouts[name]
    alpha = float(config.lora_alpha or config.lora_rank)  # kohya loaders scale by alpha / rank
    return layout.write(adapter.unet, config.lora_rank, alpha, local / layout.folder)


def _diffusers_lora(adapter: Adapter, family: ModelFamily, target: Path) -> Path:
    import diffusers
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    denoiser = adapter.unet
    layers = get_peft_model_state_dict(denoiser)
    if family.denoiser == "unet":
        # The UNet file keeps diffusers' older to_q.lora.down names (SD/SDXL exports as before); transformer
        # loaders read peft's lora_A/lora_B names, as diffusers' SD3/Flux DreamBooth scripts save them.
        converted = convert_state_dict_to_diffusers(layers)
        # Modules the conversion does not know (IF's add_k_proj) keep peft's names, and a loader that sees one
        # lora_A name reads the whole file as peft's, dropping the older names: keep peft's names throughout then.
        if not any(".lora_A." in key or ".lora_B." in key for key in converted):
            layers = converted
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
    return canonical_metadata_value(peft_config.to_dict() | {"lora_dropout": 0.0})


def _lycoris(adapter: Adapter, target: Path) -> Path:
    import torch

    target.mkdir(parents=True, exist_ok=True)
    metadata = {"lycoris_config": json.dumps(adapter.lycoris_spec or {}, sort_keys=True)}
    adapter.network.save_weights(str(target / LYCORIS_FILE), torch.float32, metadata)
    return target


def _full_pipeline(adapter: Adapter, base: BaseModel, config: TrainingConfig, target: Path) -> Path:
    import torch

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
    relative = path.relative_to(local_root).as_posix()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        data = file.read_bytes()
        store.write_bytes(f"{folder}/{file.relative_to(local_root).as_posix()}",
                          canonical_safetensors(data) if file.suffix == ".safetensors" else data)
    return f"{folder}/{relative}"
