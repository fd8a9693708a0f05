"""Option groups that only some model families read: one small module per family (or per trait families share).

Each group declares the keys a family owns (SimpleTuner's names) and their checks; `TrainingConfig` composes
them with the generic groups into the one flat config, so the config file, the CLI and the Prefect form are
unchanged. The family module (dreamcore/models/families/) names its groups (`ModelFamily.options`): stages
ask the family which keys it reads and never test a family-only key by name. This package is the one place
besides the families that lists every family's groups (config is the lowest layer and cannot ask the
registry).
"""

from __future__ import annotations

from dreamcore.config.options.families.base import FamilyOptions
from dreamcore.config.options.families.deepfloyd import DeepFloydOptions
from dreamcore.config.options.families.flow_matching import FlowMatchingOptions
from dreamcore.config.options.families.flux import FluxOptions
from dreamcore.config.options.families.sd3 import SD3Options
from dreamcore.config.options.families.t5 import T5Options
from dreamcore.config.options.families.z_image import ZImageOptions

# Every family-only group (TrainingConfig inherits them all).
FAMILY_OPTIONS: tuple[type[FamilyOptions], ...] = (FlowMatchingOptions, FluxOptions, SD3Options, T5Options,
                                                   ZImageOptions, DeepFloydOptions)


def trained_family_fields() -> tuple[str, ...]:
    """Every family-only key the trainer reads (each family's train stage key holds only its own)."""
    return tuple(name for group in FAMILY_OPTIONS if group.in_train_key for name in group.model_fields)


def family_fields_read_by_evaluation() -> tuple[str, ...]:
    """Family-only keys the evaluate stage reads too (its eval loss), keyed there when set."""
    return tuple(name for group in FAMILY_OPTIONS for name in group.read_by_evaluation)


__all__ = [
    "FAMILY_OPTIONS",
    "DeepFloydOptions",
    "FamilyOptions",
    "FlowMatchingOptions",
    "FluxOptions",
    "SD3Options",
    "T5Options",
    "ZImageOptions",
    "family_fields_read_by_evaluation",
    "trained_family_fields",
]
