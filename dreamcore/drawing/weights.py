"""Which weights a train stage produced, and putting each into a validation pipeline's denoiser.

Exports load with the libraries' own loaders (so evaluation also proves the exported files load):
diffusers LoRA via `pipe.load_lora_weights`, LyCORIS via `lycoris.create_lycoris_from_weights`, a
full fine-tune via the denoiser class's `from_pretrained`. Intermediate checkpoints hold the
trained tensors only; they go into a fresh base denoiser through the trainer's own adapter builder.
The denoiser is the family's (`family.denoiser`: the UNet, or SD3's / Flux's transformer).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from dreamcore.drawing.pipelines import fixed_variance
from dreamcore.models import detect_family
from dreamcore.storage.copies import download_weights
from dreamcore.train.adapters import build_adapter
from dreamcore.train.checkpoints import checkpoint_steps, checkpoints_folder, read_trainable
from dreamcore.train.export import DIFFUSERS_LORA_FILE, LYCORIS_FILE
from dreamcore.train.plan import TrainDetails

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig
    from dreamcore.models import ModelFamily
    from dreamcore.storage import ArtifactStore, StageResult

logger = logging.getLogger(__name__)

WeightsKind = Literal["base", "checkpoint", "diffusers_lora", "lycoris", "pipeline", "unet"]
# The export that stands for a run's final weights, in order of preference.
_PREFERRED_EXPORTS = ("diffusers_lora", "lycoris", "pipeline", "unet")


@dataclass(frozen=True)
class WeightsRef:
    """One set of weights to evaluate: a name for rows and files, its kind, step and location (URI)."""

    name: str
    kind: WeightsKind
    step: int | None = None
    uri: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def weights_of_training(store: ArtifactStore, train_result: StageResult, include_base: bool = True) -> list[WeightsRef]:
    """base, every kept intermediate checkpoint, the final export and (if trained) the EMA export."""
    folder = f"{train_result.stage}/{train_result.key}"
    final_step = int(train_result.counts.get("steps", 0))
    refs = [WeightsRef("base", "base", 0)] if include_base else []
    for step in checkpoint_steps(store, folder):
        if step < final_step:  # the last checkpoint holds the same weights as the final export
            refs.append(WeightsRef(f"step-{step}", "checkpoint", step,
                                   store.uri(f"{checkpoints_folder(folder)}/step-{step:08d}")))
    details = TrainDetails.of(train_result)
    for name, exports in (("final", details.exports), ("ema", details.ema_exports)):
        kind = next((k for k in _PREFERRED_EXPORTS if k in exports), None)
        if kind is not None:
            refs.append(WeightsRef(name, kind, final_step, exports[kind]))
    if not any(r.name == "final" for r in refs):
        raise ValueError(f"train stage {train_result.key} lists no exported weights in details['exports']")
    return refs


@contextlib.contextmanager
def applied(pipe, ref: WeightsRef, config: TrainingConfig, model_path: str, family=None) -> Iterator[object]:
    """Context: `pipe` draws with the weights of `ref`; the base denoiser is back afterwards (`family`: the
    model's, when a stage plan knows it)."""
    if ref.kind == "base":
        yield pipe
        return
    family = family or detect_family(model_path)
    with tempfile.TemporaryDirectory(prefix="dreamcore-eval-weights-") as tmp, fixed_variance(pipe):
        local = download_weights(ref.uri, Path(tmp))
        if ref.kind == "diffusers_lora":
            with _lora(pipe, local):
                yield pipe
        elif ref.kind == "lycoris":
            with _lycoris(pipe, local, family.denoiser):
                yield pipe
        else:
            unet = _full_unet(ref, local, model_path, config, pipe, family)
            with _swapped_unet(pipe, unet, family.denoiser):
                yield pipe


@contextlib.contextmanager
def _lora(pipe, folder: Path):
    pipe.load_lora_weights(str(folder), weight_name=DIFFUSERS_LORA_FILE, adapter_name="dreamcore_eval")
    try:
        yield
    finally:
        pipe.unload_lora_weights()


@contextlib.contextmanager
def _lycoris(pipe, folder: Path, denoiser_name: str):
    from lycoris import create_lycoris_from_weights

    denoiser = getattr(pipe, denoiser_name)
    network, _ = create_lycoris_from_weights(1.0, str(folder / LYCORIS_FILE), denoiser)
    network.to(device=denoiser.device, dtype=denoiser.dtype)
    network.apply_to()
    try:
        yield
    finally:
        network.restore()


def _full_unet(ref: WeightsRef, local: Path, model_path: str, config: TrainingConfig, pipe, family: ModelFamily):
    """The denoiser holding the weights of a full export or of any checkpoint."""
    base = getattr(pipe, family.denoiser)
    model_class, device, dtype = type(base), base.device, base.dtype
    if ref.kind == "pipeline":
        return model_class.from_pretrained(str(local / family.denoiser)).to(device, dtype)
    if ref.kind == "unet":  # the EMA of a full fine-tune: the denoiser's own folder
        return model_class.from_pretrained(str(local)).to(device, dtype)
    return _checkpoint_unet(local, model_path, config, model_class, family).to(device, dtype)


def _checkpoint_unet(folder: Path, model_path: str, config: TrainingConfig, model_class, family: ModelFamily):
    """A fresh base denoiser with the checkpoint's trained tensors, through the trainer's adapter builder."""
    unet = model_class.from_pretrained(model_path, subfolder=family.denoiser)
    adapter = build_adapter(config, unet, target_modules=family.lora_targets(config))
    adapter.load_trainable_state(read_trainable(folder))
    unet.requires_grad_(False).eval()
    if adapter.network is not None:
        # LyCORIS hooks the UNet's modules; keep the network alive as long as the UNet.
        unet._dreamcore_lycoris_network = adapter.network
    return unet


@contextlib.contextmanager
def _swapped_unet(pipe, unet, denoiser_name: str):
    base = getattr(pipe, denoiser_name)
    setattr(pipe, denoiser_name, unet)
    try:
        yield
    finally:
        setattr(pipe, denoiser_name, base)
