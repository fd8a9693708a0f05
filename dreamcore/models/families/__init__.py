"""The model-family registry: one module per family, asked by every stage (never tested by name).

Adding a family = one module here defining `FAMILY` (plus its tiny-model builder and tests), and
its name in `_MODULES`. Detection tries the families in `_MODULES` order, the most specific first
(the refiner before the SDXL base, SD 2.x before SD 1.x), and the first that recognises the folder wins.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

from dreamcore.models.families.family import ModelFamily
from dreamcore.models.families.objectives import DdpmObjective
from dreamcore.models.files import read_pipeline_json

_MODULES = (
    "qwen_image",
    "chroma",
    "lumina2",
    "flux2",
    "flux.kontext",
    "flux", "sd3", "kolors",
    "z_image",
    "sdxl_refiner", "sdxl", "sd2", "sd1", "deepfloyd", "deepfloyd.stage_two",
)


@cache
def all_families() -> tuple[ModelFamily, ...]:
    """Every registered family, in detection order."""
    return tuple(importlib.import_module(f"{__name__}.{module}").FAMILY for module in _MODULES)


def family_names() -> tuple[str, ...]:
    """The names of every registered family."""
    return tuple(family.name for family in all_families())


def family_named(name: str) -> ModelFamily:
    """The family called `name` (as stored in stage results); ValueError listing the names otherwise."""
    for family in all_families():
        if family.name == name:
            return family
    raise ValueError(f"unknown model family {name!r}; expected one of {', '.join(family_names())}")


def detect_family(path_or_id: str | Path) -> ModelFamily:
    """The family of a pipeline folder or hub id, from its model_index.json and denoiser config."""
    index = read_pipeline_json(path_or_id, "model_index.json")
    return family_from_configs(index, lambda folder: read_pipeline_json(path_or_id, f"{folder}/config.json",
                                                                        required=False) or {},
                               where=str(path_or_id))


def family_from_configs(index: dict, denoiser_config, where: str) -> ModelFamily:
    """The first family that recognises `index`; `denoiser_config(folder)` reads a component's config."""
    configs: dict[str, dict] = {}
    for family in all_families():
        if family.denoiser not in configs:
            configs[family.denoiser] = denoiser_config(family.denoiser)
        if family.detects(index, configs[family.denoiser]):
            return family
    known = sorted({family.pipeline_class for family in all_families()})
    raise ValueError(
        f"{where}: pipeline class {index.get('_class_name', '')!r} in model_index.json is not a pipeline "
        f"dreamcore trains; expected one of {', '.join(known)}"
    )


def families_of_config(model_family: str) -> tuple[str, ...]:
    """Names of the families a SimpleTuner `model_family` value stands for."""
    return tuple(family.name for family in all_families() if model_family in family.config_names)


__all__ = [
    "DdpmObjective",
    "ModelFamily",
    "all_families",
    "detect_family",
    "families_of_config",
    "family_from_configs",
    "family_named",
    "family_names",
]
