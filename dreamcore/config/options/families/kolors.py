"""Kolors' flavour (its hub id); it has no keys of its own.

Read by the Kolors family (dreamcore/models/families/kolors/).
"""

from __future__ import annotations

from typing import ClassVar

from dreamcore.config.options.families.base import FamilyOptions


class KolorsOptions(FamilyOptions):
    """Kolors' model flavour: SimpleTuner's `1.0`, the diffusers conversion of Kwai's release."""

    flavours: ClassVar[dict[str, dict[str, str]]] = {"kolors": {"1.0": "Kwai-Kolors/Kolors-diffusers"}}
