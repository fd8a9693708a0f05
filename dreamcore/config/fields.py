"""Field helpers shared by the stage keys and the dataset checks."""

from __future__ import annotations

from pydantic import BaseModel


def differs_from_default(model: BaseModel, name: str) -> bool:
    """Whether `name` holds a value other than its declared default. Stage keys hash fields added after runs
    were keyed only when this is true, so the keys of runs that do not use them stay what they were."""
    return getattr(model, name) != type(model).model_fields[name].default
