"""One loading path for tiny model folders, real model folders and Hugging Face hub ids.

Hub ids only ever touch the network for `model_index.json` / `unet/config.json` while
HF_HUB_OFFLINE is unset; weights come from the local cache or from an explicit `load_pipeline`.
torch, diffusers and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

Family = Literal["sd1", "sd2", "sdxl", "sdxl-refiner"]
FAMILIES: tuple[Family, ...] = ("sd1", "sd2", "sdxl", "sdxl-refiner")

# A byte-level BPE needs at least its 256 byte symbols to spell arbitrary text (our tiny
# tokenizer has 514 entries, real CLIP 49408). A pipeline folder without tokenizer files loads
# under HF_HUB_OFFLINE=1 *without an error* as a 2-entry tokenizer that maps every word to
# <|endoftext|>; anything below this bound is that broken fallback, never a usable vocabulary.
MIN_TOKENIZER_VOCAB = 256

_PIPELINE_CLASSES: dict[str, str] = {
    "sd1": "StableDiffusionPipeline",
    "sd2": "StableDiffusionPipeline",
    "sdxl": "StableDiffusionXLPipeline",
    "sdxl-refiner": "StableDiffusionXLImg2ImgPipeline",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_OFFLINE_HINT = "download it first or point pretrained_model_name_or_path at a local folder"


# ---------------------------------------------------------------- family detection


def detect_family(path_or_id: str | Path) -> Family:
    """Which Stable Diffusion family a pipeline folder or hub id is: sd1, sd2, sdxl or sdxl-refiner."""
    index = _read_pipeline_json(path_or_id, "model_index.json")
    unet = _read_pipeline_json(path_or_id, "unet/config.json", required=False) or {}
    return _family_from_configs(index, unet, where=str(path_or_id))


def _family_from_configs(index: dict, unet: dict, where: str) -> Family:
    class_name = index.get("_class_name", "")
    is_xl = "StableDiffusionXL" in class_name or unet.get("addition_embed_type") == "text_time"
    if is_xl:
        # The refiner conditions on an aesthetic score and has only the second (OpenCLIP) encoder, so
        # real refiners cross-attend to 1280-wide states (the base to 768 + 1280 = 2048).
        no_first_encoder = _component_missing(index, "text_encoder")
        refiner = index.get("requires_aesthetics_score") or no_first_encoder or unet.get("cross_attention_dim") == 1280
        return "sdxl-refiner" if refiner else "sdxl"
    if class_name.startswith("StableDiffusion"):
        # SD 2.x conditions on OpenCLIP ViT-H (1024 wide); SD 1.x and the tiny model on narrower CLIPs.
        return "sd2" if unet.get("cross_attention_dim") == 1024 else "sd1"
    raise ValueError(
        f"{where}: pipeline class {class_name!r} in model_index.json is not a Stable Diffusion "
        "pipeline; expected StableDiffusionPipeline, StableDiffusionXLPipeline or "
        "StableDiffusionXLImg2ImgPipeline"
    )


def _component_missing(index: dict, name: str) -> bool:
    entry = index.get(name)
    return entry is None or (isinstance(entry, list) and entry[0] is None)


# ---------------------------------------------------------------- pipelines


def load_pipeline(
    path_or_id: str | Path,
    family: Family | None = None,
    torch_dtype: Any = None,
    components: Mapping[str, Any] | None = None,
):
    """Load the diffusers pipeline class of `family` (detected when None) and check its tokenizers.

    `components` go to `from_pretrained`: replacement modules (vae=..., scheduler=...), None to skip
    one, or options such as variant="fp16". SD 1/2 skip the safety checker unless given one.
    """
    family = family or detect_family(path_or_id)
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")
    source = _pipeline_source(path_or_id)
    import diffusers

    options = {"safety_checker": None, "requires_safety_checker": False} if family in ("sd1", "sd2") else {}
    options.update(components or {})
    if torch_dtype is not None:
        options["dtype"] = torch_dtype
    pipeline_class = getattr(diffusers, _PIPELINE_CLASSES[family])
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
    config = text_encoder.config
    if size > config.vocab_size:
        raise ValueError(
            f"{where}: tokenizer has {size} entries but the text encoder's embedding has only "
            f"{config.vocab_size}; tokenizer and text encoder come from different models"
        )
    if tokenizer.model_max_length > config.max_position_embeddings:
        raise ValueError(
            f"{where}: tokenizer model_max_length {tokenizer.model_max_length} exceeds the text "
            f"encoder's {config.max_position_embeddings} positions; tokenizer_config.json is missing or wrong"
        )


# ---------------------------------------------------------------- fingerprints

_CHUNK = 1 << 20  # 1 MiB
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")
_VOLATILE_KEYS = {"_diffusers_version", "transformers_version", "_name_or_path", "_commit_hash", "name_or_path"}


def model_fingerprint(path_or_id: str | Path, component: str | None = None, variant: str | None = None) -> str:
    """A 16-hex digest of one component's config and weights (`component` None: the folder itself).

    Stable across machines and library versions: hashes file names, sizes, configs without their
    version keys, and for big weight files the first, middle and last MiB (no paths, no mtimes).
    """
    root = local_model_folder(path_or_id)
    folder = root / component if component else root
    if not folder.is_dir():
        raise FileNotFoundError(f"{path_or_id}: component folder {component!r} not found at {folder}")
    files = _fingerprint_files(folder, variant)
    if not files:
        raise FileNotFoundError(f"{path_or_id}: no config or weight files in {folder} (variant {variant!r})")
    digest = hashlib.sha256()
    for name in files:
        digest.update(f"{name}\t{_file_digest(folder / name)}\n".encode())
    return digest.hexdigest()[:16]


def _fingerprint_files(folder: Path, variant: str | None) -> list[str]:
    """Config files plus the weights of one variant, preferring safetensors over pickles."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and not _ignored(p.name))
    weights = [n for n in names if n.endswith(_WEIGHT_SUFFIXES) and _variant_of(n) == variant]
    safetensors = [n for n in weights if n.endswith(".safetensors")]
    configs = [n for n in names if not n.endswith(_WEIGHT_SUFFIXES)]
    return configs + (safetensors or weights)


def _ignored(name: str) -> bool:
    return name.startswith(".") or name.endswith((".md", ".index.json", ".lock"))


def _variant_of(weight_name: str) -> str | None:
    """"diffusion_pytorch_model.fp16.safetensors" (or a shard "...fp16-00001-of-00002...") -> "fp16"."""
    parts = weight_name.split(".")
    return re.sub(r"-\d{5}-of-\d{5}$", "", parts[-2]) if len(parts) > 2 else None


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    if path.suffix == ".json":
        return _json_digest(path)
    hasher = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        if size <= 3 * _CHUNK:
            hasher.update(handle.read())
        else:
            for offset in (0, size // 2, size - _CHUNK):
                handle.seek(offset)
                hasher.update(handle.read(_CHUNK))
    return hasher.hexdigest()


def _json_digest(path: Path) -> str:
    """Digest of a JSON file's content without the library-version keys that re-saving changes."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = {key: value for key, value in data.items() if key not in _VOLATILE_KEYS}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------- local folders and hub ids


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE asks for no network access (read at call time, not import time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _is_hub_id(path_or_id: str | Path) -> bool:
    text = str(path_or_id)
    return not Path(text).expanduser().exists() and isinstance(path_or_id, str) and bool(_HUB_ID.match(text))


def _read_pipeline_json(path_or_id: str | Path, filename: str, required: bool = True) -> dict | None:
    """Read a small JSON file of a pipeline from a local folder or (config only) from the hub."""
    if _is_hub_id(path_or_id):
        path = _hub_file(str(path_or_id), filename, required)
    else:
        path = local_model_folder(path_or_id) / filename
    if path is None or not path.is_file():
        if required:
            raise ValueError(
                f"{path_or_id} is not a diffusers pipeline folder: {filename} not found "
                "(expected a folder saved with DiffusionPipeline.save_pretrained or a hub snapshot)"
            )
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _hub_file(repo_id: str, filename: str, required: bool) -> Path | None:
    """Path of one small file of a hub repo: cached, or downloaded only while online."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
    )

    offline = hub_offline()
    try:
        return Path(hf_hub_download(repo_id, filename, local_files_only=offline))
    except RemoteEntryNotFoundError:  # the repo exists but has no such file
        return None
    except LocalEntryNotFoundError as error:  # not cached, and offline or the hub unreachable
        if not required:
            return None
        if offline:
            raise FileNotFoundError(
                f"model {repo_id} not found locally and HF_HUB_OFFLINE=1: {_OFFLINE_HINT}"
            ) from error
        raise FileNotFoundError(f"model {repo_id}: could not reach the hub ({error})") from error
    except RepositoryNotFoundError as error:
        raise FileNotFoundError(
            f"{repo_id} is neither a local folder nor a model on the Hugging Face hub "
            "(or it is private/gated: log in with `hf auth login`)"
        ) from error


def _pipeline_source(path_or_id: str | Path) -> str:
    """What to pass to from_pretrained; raises the clear offline error for an uncached hub id."""
    if not _is_hub_id(path_or_id):
        return str(local_model_folder(path_or_id))
    _hub_file(str(path_or_id), "model_index.json", required=True)
    if hub_offline():
        # The cached snapshot folder: diffusers given the id spends seconds on offline hub look-ups.
        return str(local_model_folder(path_or_id))
    logger.warning("loading %s from the Hugging Face hub: weights not cached yet are downloaded", path_or_id)
    return str(path_or_id)


def local_model_folder(path_or_id: str | Path) -> Path:
    """A local folder for a path, or the cached snapshot folder of a hub id (never downloads)."""
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"{path} is a file; expected a model folder")
    if not _is_hub_id(path_or_id):
        raise FileNotFoundError(f"model folder {path} does not exist")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(path_or_id), local_files_only=True))
    except LocalEntryNotFoundError as error:
        raise FileNotFoundError(
            f"model {path_or_id} is not in the local Hugging Face cache: {_OFFLINE_HINT}"
        ) from error
