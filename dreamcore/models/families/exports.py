"""LoRA layouts a family exports besides diffusers' own (which every family writes through its pipeline)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (the denoiser with its trained peft LoRA, rank, alpha, folder) -> the folder, holding the layout's file.
LoraWriter = Callable[[Any, int, float, Path], Path]


@dataclass(frozen=True)
class LoraLayout:
    """One LoRA export format: how it is written, where, and how people load it (the model card's line)."""

    write: LoraWriter
    folder: str  # under the export folder: kohya, comfyui
    how_to_load: str
