"""DeepFloyd IF's flavours (SimpleTuner's model_flavour values): it owns no keys of its own yet.

Read by the DeepFloyd family (dreamcore/models/families/deepfloyd/).
"""

from __future__ import annotations

from typing import ClassVar

from dreamcore.config.options.families.base import FamilyOptions


class DeepFloydOptions(FamilyOptions):
    """DeepFloyd IF: its flavours, stage I (64 px) first; the II flavours are its 64 -> 256 upscalers."""

    flavours: ClassVar[dict[str, dict[str, str]]] = {"deepfloyd": {
        "i-medium-400m": "DeepFloyd/IF-I-M-v1.0", "i-large-900m": "DeepFloyd/IF-I-L-v1.0",
        "i-xlarge-4.3b": "DeepFloyd/IF-I-XL-v1.0", "ii-medium-450m": "DeepFloyd/IF-II-M-v1.0",
        "ii-large-1.2b": "DeepFloyd/IF-II-L-v1.0"}}
