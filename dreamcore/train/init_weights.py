"""Start training from earlier weights (`init_weights`): a previous run's export, local or remote.

The same files the exporters write load back here: a diffusers LoRA (peft keys through diffusers'
own converters, into the adapter peft attached), a LyCORIS weights file (into the network built from
lycoris_config) or a diffusers UNet / pipeline folder for a full fine-tune. `denoiser` names the
family's trained component (`unet`, or SD3's / Flux's `transformer`): the LoRA keys' prefix and a
pipeline folder's subfolder. Files are found by
content: the stage key holds their digest, not their path, so a moved copy is the same run and a
rewritten file is a new one. Whatever does not fit the adapter exactly (other rank, other target
modules, other algorithm) is refused naming init_weights and the file.
"""

from __future__ import annotations

import hashlib
import posixpath
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fsspec.core import url_to_fs

from dreamcore.storage.copies import download_weights
from dreamcore.train.export import DIFFUSERS_LORA_FILE, LYCORIS_FILE

if TYPE_CHECKING:
    import torch
    from fsspec import AbstractFileSystem

    from dreamcore.config import TrainingConfig
    from dreamcore.train.adapters import Adapter


class InitWeightsError(ValueError):
    """init_weights cannot be used for this run (missing, unreadable, or not fitting the adapter)."""


@dataclass(frozen=True)
class InitWeights:
    """The weights files of an init_weights location: its filesystem, the root and the files below it."""

    fs: AbstractFileSystem
    root: str  # the file, or the folder whose files are listed (relative names)
    files: tuple[str, ...]


def init_weights_kind(config: TrainingConfig) -> str:
    """Which weights init_weights must hold for this config: lora, lycoris or full."""
    if config.model_type == "full":
        return "full"
    return "lycoris" if config.lora_type == "lycoris" else "lora"


def find_init_weights(location: str, kind: str, denoiser: str = "unet") -> InitWeights:
    """The files of `location` that hold `kind` weights; InitWeightsError when they are not there."""
    fs, path = url_to_fs(_expanded(location))
    path = path.rstrip("/")
    if not fs.exists(path):
        raise InitWeightsError(f"init_weights {location}: no such file or folder")
    if not fs.isdir(path):
        if kind == "full":
            raise InitWeightsError(f"init_weights {location}: model_type 'full' needs a diffusers {denoiser} or "
                                   "pipeline folder (a previous full run's export/pipeline), not a single file")
        return InitWeights(fs, path, ("",))
    if kind == "full":
        folder = f"{path}/{denoiser}" if fs.isdir(f"{path}/{denoiser}") else path
        if not fs.exists(f"{folder}/config.json"):
            raise InitWeightsError(f"init_weights {location}: no diffusers {denoiser} here (expected config.json in "
                                   f"the folder or in its {denoiser}/ subfolder)")
        prefix = len(folder.rstrip("/")) + 1
        return InitWeights(fs, folder, tuple(sorted(p[prefix:] for p in fs.find(folder))))
    name = LYCORIS_FILE if kind == "lycoris" else DIFFUSERS_LORA_FILE
    if not fs.exists(f"{path}/{name}"):
        raise InitWeightsError(f"init_weights {location}: the folder holds no {name}; give the weights file itself "
                               f"or a folder with {name} (a previous run's export folder)")
    return InitWeights(fs, f"{path}/{name}", ("",))


def init_weights_digest(config: TrainingConfig, denoiser: str = "unet") -> str:
    """sha256 of the init_weights files' names and bytes: what the train stage key holds."""
    weights = find_init_weights(config.init_weights, init_weights_kind(config), denoiser)
    digest = hashlib.sha256()
    for name in weights.files:
        content = hashlib.sha256()
        with weights.fs.open(posixpath.join(weights.root, name) if name else weights.root, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                content.update(block)
        digest.update(name.encode() + b"\0" + content.digest())
    return digest.hexdigest()


def load_init_weights(adapter: Adapter, config: TrainingConfig, denoiser: str = "unet") -> None:
    """Put the init_weights of `config` into the freshly built `adapter` (same shapes, every tensor)."""
    kind = init_weights_kind(config)
    weights = find_init_weights(config.init_weights, kind, denoiser)
    with tempfile.TemporaryDirectory(prefix="dreamcore-init-weights-") as tmp:
        # A copy on local disk: remote stores (s3) and local paths alike, read by the stock loaders.
        local = download_weights(weights.fs.unstrip_protocol(weights.root), Path(tmp))
        if kind == "lora":
            _load_lora(adapter, local, config.init_weights, denoiser)
        elif kind == "lycoris":
            _load_lycoris(adapter, local, config.init_weights)
        else:
            _load_full(adapter, local, config.init_weights)


def _load_lora(adapter: Adapter, file: Path, location: str, denoiser: str) -> None:
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

    try:
        # diffusers' own reader (the format save_lora_weights writes; kohya files are converted too).
        state, _ = StableDiffusionPipeline.lora_state_dict(str(file.parent), weight_name=file.name)
    except Exception as error:  # a corrupt or foreign file: say which setting points at it
        raise InitWeightsError(f"init_weights {location}: not a readable LoRA weights file ({error})") from error
    unet_state = {k[len(denoiser) + 1:]: v for k, v in state.items() if k.startswith(f"{denoiser}.")}
    peft_state = convert_unet_state_dict_to_peft(unet_state)
    _check_fits(peft_state, get_peft_model_state_dict(adapter.unet), location)
    result = set_peft_model_state_dict(adapter.unet, peft_state, adapter_name="default")
    if getattr(result, "unexpected_keys", None):
        raise InitWeightsError(f"init_weights {location}: peft did not place {sorted(result.unexpected_keys)[:3]}")


def _load_lycoris(adapter: Adapter, file: Path, location: str) -> None:
    from safetensors.torch import load_file

    try:
        state = load_file(str(file))
    except Exception as error:
        raise InitWeightsError(f"init_weights {location}: not a readable safetensors file ({error})") from error
    _check_fits(state, adapter.network.state_dict(), location)
    adapter.network.load_state_dict(state, strict=True)


def _load_full(adapter: Adapter, folder: Path, location: str) -> None:
    model_class = type(adapter.unet)  # the denoiser's own class: UNet2DConditionModel or a transformer
    try:
        state = model_class.from_pretrained(str(folder)).state_dict()
    except Exception as error:
        raise InitWeightsError(f"init_weights {location}: not a loadable diffusers {model_class.__name__} "
                               f"({error})") from error
    _check_fits(state, adapter.unet.state_dict(), location)
    adapter.unet.load_state_dict(state, strict=True)


def _check_fits(given: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], location: str) -> None:
    """Every tensor the adapter has, with its shape, and nothing else: else say what differs."""
    if not set(given) & set(expected):
        raise InitWeightsError(
            f"init_weights {location}: none of its {len(given)} tensors match this run's adapter "
            f"(e.g. {sorted(given)[:2]} vs {sorted(expected)[:2]}); was it trained with another adapter "
            "type (lora_type / model_type) or for another model?"
        )
    missing, unexpected = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    if missing or unexpected:
        raise InitWeightsError(
            f"init_weights {location}: does not fit this run's adapter: missing {missing[:3]} "
            f"({len(missing)} in all), unexpected {unexpected[:3]} ({len(unexpected)} in all); "
            "use the same target modules / LyCORIS preset as the run that wrote it"
        )
    for name, tensor in expected.items():
        if tuple(given[name].shape) != tuple(tensor.shape):
            raise InitWeightsError(
                f"init_weights {location}: tensor {name} has shape {tuple(given[name].shape)} but this run's "
                f"adapter needs {tuple(tensor.shape)}; set the rank (lora_rank / linear_dim) the weights were "
                "trained with"
            )


def _expanded(location: str) -> str:
    return location if "://" in location else str(Path(location).expanduser())
