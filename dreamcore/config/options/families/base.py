"""What a family's option group declares besides its keys: how stage keys treat them."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel


class FamilyOptions(BaseModel):
    """Keys only the families that name this group read (SimpleTuner's names, composed into TrainingConfig)."""

    # Whether the trainer reads the keys (in the train stage key of the families naming the group, sweepable);
    # False: read before training (the text cache), whose digest carries their effect.
    in_train_key: ClassVar[bool] = True
    # Keys added after runs were keyed: a stage key holds them only when set away from their default.
    keyed_when_set: ClassVar[tuple[str, ...]] = ()
    # Keys the evaluate stage reads too (its eval loss): in the evaluate key when set.
    read_by_evaluation: ClassVar[tuple[str, ...]] = ()
