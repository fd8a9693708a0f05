"""The DreamBooth paper's evaluation protocol: prompt templates per subject kind, expanded for one subject.

The prompt sets live as data in protocols/dreambooth.json (25 prompts each for objects and live
subjects, copied from the paper's dataset repository), with `{token}` (the identifier) and `{class}`
(the class noun). A protocol is the expanded prompts (the set's, then the user's own), the bare
class prompt that prior preservation (PRES) draws, and the seeds: image i of every prompt uses
seed first + i, so every set of weights draws from the same starting noise.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig

PROTOCOL_FILE = "protocols/dreambooth.json"


@dataclass(frozen=True)
class SubjectProtocol:
    """What the subject-fidelity evaluation draws: prompts x seeds, plus the class prompt x seeds."""

    prompts: tuple[str, ...]
    class_prompt: str
    seeds: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"prompts": list(self.prompts), "class_prompt": self.class_prompt, "seeds": list(self.seeds)}

    @property
    def size(self) -> int:
        """Images drawn per set of weights (prompts and class prompt, every seed)."""
        return (len(self.prompts) + 1) * len(self.seeds)


@functools.cache
def _protocol_data() -> dict[str, Any]:
    return json.loads(files("dreamcore.evaluate").joinpath(PROTOCOL_FILE).read_text())


def prompt_set_names() -> list[str]:
    """The prompt sets the protocol file holds."""
    return sorted(_protocol_data()["sets"])


def prompt_templates(name: str, quick: bool = False) -> list[str]:
    """The templates of a prompt set ('none': none); `quick`: only its quick subset."""
    if name == "none":
        return []
    sets = _protocol_data()["sets"]
    if name not in sets:
        raise ValueError(f"evaluation_prompt_set {name!r}: not in {PROTOCOL_FILE}; use one of "
                         f"{', '.join(['none', *sorted(sets)])}")
    chosen = sets[name]
    return [chosen["prompts"][i] for i in chosen["quick"]] if quick else list(chosen["prompts"])


def expand(template: str, token: str, class_word: str) -> str:
    """A template with {token} and {class} filled in."""
    return template.format(token=token, **{"class": class_word})


def protocol_from_config(config: TrainingConfig, quick: bool = False) -> SubjectProtocol | None:
    """The config's protocol (None when evaluation_prompt_set is none and there is no evaluation_prompt).

    `quick` (or evaluation_quick) takes the set's quick subset; the user's own prompts are always kept.
    """
    if not config.evaluation_protocol_on:
        return None
    templates = prompt_templates(config.evaluation_prompt_set, quick or config.evaluation_quick)
    templates += [t for t in config.evaluation_prompts if t not in templates]
    token, class_word = config.evaluation_token, config.evaluation_class
    first = config.validation_seed if config.validation_seed is not None else (config.seed or 0)
    return SubjectProtocol(tuple(expand(t, token, class_word) for t in templates),
                           expand(_protocol_data()["class_prompt"], token, class_word),
                           tuple(first + i for i in range(config.evaluation_images_per_prompt)))
