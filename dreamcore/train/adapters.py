"""What is trained: a peft LoRA, a LyCORIS network, or the whole UNet.

Every adapter reports how many modules it wrapped (zero is an error: a target list or LyCORIS
preset that matches nothing would otherwise train nothing for hours), can be switched off to get
the base model's prediction (the prior-preservation target), and exposes exactly the tensors that
are trained (for the optimiser, checkpoints and EMA).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

    from dreamcore.config import TrainingConfig

logger = logging.getLogger(__name__)

AdapterKind = Literal["lora", "lycoris", "full"]
LYCORIS_ALGOS = ("lora", "locon", "loha", "lokr")
# The LycorisNetwork class attributes that apply_preset overwrites (class-level, so they leak into
# every later network in the process unless restored).
_LYCORIS_PRESET_STATE = (
    "ENABLE_CONV", "TARGET_REPLACE_MODULE", "TARGET_REPLACE_NAME", "MODULE_ALGO_MAP",
    "NAME_ALGO_MAP", "LORA_PREFIX", "USE_FNMATCH", "TARGET_EXCLUDE_NAME",
)
# optimum-quanto swaps nn.Linear / nn.Conv2d for these classes: LyCORIS matches class names.
_QUANTO_CLASS_NAMES = {"Linear": "QLinear", "Conv2d": "QConv2d"}


class AdapterError(ValueError):
    """An adapter that cannot be built as configured (bad config, or it wraps nothing)."""


@dataclass
class Adapter:
    """The trained part of the model and how to switch it off."""

    kind: AdapterKind
    unet: torch.nn.Module
    wrapped_modules: int
    network: torch.nn.Module | None = None  # LyCORIS network (its parameters are not in unet's)
    reference_unet: torch.nn.Module | None = None  # full fine-tune: frozen copy of the base
    lycoris_spec: dict[str, Any] | None = None

    def named_trainable(self) -> dict[str, torch.nn.Parameter]:
        """Name -> parameter of everything the optimiser updates (stable order)."""
        module = self.network if self.kind == "lycoris" else self.unet
        return {name: p for name, p in module.named_parameters() if p.requires_grad}

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters the optimiser updates."""
        return list(self.named_trainable().values())

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Detached CPU copies of the trained tensors (for checkpoints and exports)."""
        return {name: p.detach().to("cpu", copy=True).contiguous() for name, p in self.named_trainable().items()}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        """Copy tensors saved by trainable_state back into the trained parameters."""
        import torch

        params = self.named_trainable()
        if set(params) != set(state):
            missing, extra = sorted(set(params) - set(state)), sorted(set(state) - set(params))
            raise AdapterError(f"checkpoint does not fit this adapter: missing {missing[:3]}, unexpected {extra[:3]}")
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(state[name].to(p.device, p.dtype))

    @contextlib.contextmanager
    def disabled(self) -> Iterator[torch.nn.Module]:
        """Yield a module that predicts like the base model (adapter off / frozen reference)."""
        if self.kind == "lora":
            self.unet.disable_adapters()
            try:
                yield self.unet
            finally:
                self.unet.enable_adapters()
        elif self.kind == "lycoris":
            multiplier = self.network.multiplier
            self.network.set_multiplier(0.0)
            try:
                yield self.unet
            finally:
                self.network.set_multiplier(multiplier)
        else:
            if self.reference_unet is None:
                raise AdapterError(
                    "a regularisation sample needs the base model's prediction, but this full fine-tune "
                    "keeps no frozen reference UNet; set prior_preservation_target 'noise' or keep the "
                    "reference (build_adapter(..., keep_reference=True))"
                )
            yield self.reference_unet


def build_adapter(config: TrainingConfig, unet, *, quantised: bool = False, keep_reference: bool = False,
                  target_modules: list[str] | None = None) -> Adapter:
    """Attach the configured adapter to `unet` (frozen except the adapter) and check what it wrapped.

    `target_modules`: the peft LoRA targets (the family's, `family.lora_targets(config)`); default the config's.
    """
    if config.model_type == "full":
        return _full(unet, keep_reference)
    if config.lora_type == "lycoris":
        return _lycoris(unet, load_lycoris_spec(config.lycoris_config), quantised)
    return _peft_lora(config, unet, list(target_modules or config.lora_target_modules))


def _full(unet, keep_reference: bool) -> Adapter:
    reference = None
    if keep_reference:
        # A frozen copy of the base, made before any update, gives the prior-preservation target.
        reference = copy.deepcopy(unet).requires_grad_(False).eval()
    unet.requires_grad_(True)
    trained = [m for m in unet.modules() if any(True for _ in m.parameters(recurse=False))]
    return _checked(Adapter("full", unet, len(trained), reference_unet=reference), "full fine-tune")


def _peft_lora(config: TrainingConfig, unet, target_modules: list[str]) -> Adapter:
    from peft import LoraConfig
    from peft.tuners.lora import LoraLayer

    unet.requires_grad_(False)
    lora_config = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha or config.lora_rank,
        lora_dropout=config.lora_dropout,
        init_lora_weights=peft_init_lora_weights(config.lora_init_type),
        target_modules=target_modules,
    )
    try:
        unet.add_adapter(lora_config)
    except ValueError as error:  # peft: "Target modules {...} not found in the base model"
        raise AdapterError(
            f"peft_lora_target_modules {target_modules} match no UNet module / transformer module ({error}); "
            "use names such as to_q, to_k, to_v, to_out.0, proj_in, ff.net.2"
        ) from error
    wrapped = sum(1 for m in unet.modules() if isinstance(m, LoraLayer))
    adapter = Adapter("lora", unet, wrapped)
    _cast_trainable_to_fp32(adapter)
    return _checked(adapter, f"peft LoRA on {target_modules}")


def peft_init_lora_weights(lora_init_type: str) -> bool | str:
    """peft's init_lora_weights for SimpleTuner's lora_init_type ('default' is peft's True), as SimpleTuner maps it."""
    return True if lora_init_type == "default" else lora_init_type


def load_lycoris_spec(path: str | None) -> dict[str, Any]:
    """Read and check a lycoris_config JSON file (SimpleTuner's shape: algo, multiplier, linear_dim, ...)."""
    if not path:
        raise AdapterError("lora_type 'lycoris' needs lycoris_config: the path to a LyCORIS JSON config")
    file = Path(path).expanduser()
    try:
        spec = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise AdapterError(f"lycoris_config {path}: file not found") from error
    except json.JSONDecodeError as error:
        raise AdapterError(f"lycoris_config {path}: not valid JSON ({error})") from error
    if not isinstance(spec, dict):
        raise AdapterError(f"lycoris_config {path}: expected a JSON object with 'algo', 'linear_dim', ...")
    algo = spec.get("algo", "lora")
    if algo not in LYCORIS_ALGOS:
        raise AdapterError(f"lycoris_config {path}: key 'algo' is {algo!r}; supported: {', '.join(LYCORIS_ALGOS)}")
    preset = spec.get("apply_preset")
    if preset is not None and not isinstance(preset, dict):
        raise AdapterError(f"lycoris_config {path}: key 'apply_preset' must be an object (target_module, ...)")
    return spec


def _lycoris(unet, spec: dict[str, Any], quantised: bool) -> Adapter:
    from lycoris import LycorisNetwork, create_lycoris

    options = {k: v for k, v in spec.items() if k not in ("algo", "multiplier", "linear_dim", "linear_alpha", "apply_preset")}
    preset = dict(spec.get("apply_preset") or {})
    if preset.pop("enable_conv", True) is False:
        options["conv_dim"] = 0  # create_lycoris re-enables conv itself; a zero conv rank is the same switch
    saved = {name: copy.copy(getattr(LycorisNetwork, name)) for name in _LYCORIS_PRESET_STATE}
    try:
        if preset:
            LycorisNetwork.apply_preset(preset)
        if quantised:
            _add_quantised_class_names(LycorisNetwork)
        network = create_lycoris(
            unet,
            float(spec.get("multiplier", 1.0)),
            linear_dim=int(spec.get("linear_dim", 4)),
            linear_alpha=float(spec.get("linear_alpha", 1.0)),
            algo=spec.get("algo", "lora"),
            **options,
        )
    finally:
        for name, value in saved.items():  # apply_preset is class-level: never leak it into later networks
            setattr(LycorisNetwork, name, value)
    network.apply_to()
    # Quantised weights may keep requires_grad after freeze(); LyCORIS never refreezes the base.
    unet.requires_grad_(False)
    network.requires_grad_(True)
    adapter = Adapter("lycoris", unet, len(network.loras), network=network, lycoris_spec=spec)
    _cast_trainable_to_fp32(adapter)
    return _checked(adapter, f"LyCORIS {spec.get('algo', 'lora')} with preset {spec.get('apply_preset') or 'default'}")


def _add_quantised_class_names(network_class) -> None:
    targets = list(network_class.TARGET_REPLACE_MODULE)
    targets += [_QUANTO_CLASS_NAMES[name] for name in targets if name in _QUANTO_CLASS_NAMES]
    network_class.TARGET_REPLACE_MODULE = targets
    algo_map = dict(network_class.MODULE_ALGO_MAP)
    for name, quantised_name in _QUANTO_CLASS_NAMES.items():
        if name in algo_map:
            algo_map.setdefault(quantised_name, algo_map[name])
    network_class.MODULE_ALGO_MAP = algo_map


def _cast_trainable_to_fp32(adapter: Adapter) -> None:
    # Adapter weights train in fp32 even over a half-precision or quantised base (stable updates).
    import torch

    for p in adapter.trainable_parameters():
        p.data = p.data.to(torch.float32)


def _checked(adapter: Adapter, what: str) -> Adapter:
    if adapter.wrapped_modules == 0 or not adapter.trainable_parameters():
        raise AdapterError(
            f"{what} wrapped 0 modules of the UNet, so nothing would train; check the target modules / "
            "apply_preset against the model's module names and classes"
        )
    logger.info("%s wraps %d modules (%d trainable tensors)", what, adapter.wrapped_modules,
                len(adapter.trainable_parameters()))
    return adapter
