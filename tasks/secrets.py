"""Prefect Secret blocks named in the config (webhook_config *_secret), loaded where they are used.

dreamcore never imports Prefect, so the tasks that may deliver previews (train, evaluate) load the
blocks here, into an in-memory copy of the config: the flow-run parameter, task cache keys and every
record keep the block name only.
"""

from __future__ import annotations

from typing import TypeVar

from dreamcore.config import RunConfig
from dreamcore.config.options.webhooks import training_with_secret_blocks_loaded

PlanT = TypeVar("PlanT")


def load_secret_block(name: str) -> str:
    """The value of the Prefect Secret block `name` (a clear error when there is none)."""
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(name, _sync=True).get()
    except ValueError as error:
        raise ValueError(f"webhook_config: Prefect Secret block {name!r} not found ({error}); create it "
                         "(prefect block create secret, or Secret(value=...).save(name)) or use an *_env key") from error
    return str(value)


def with_secret_blocks_loaded(config: RunConfig) -> RunConfig:
    """`config` with its webhook Secret blocks loaded; `config` itself when it names none."""
    training = training_with_secret_blocks_loaded(config.training, load_secret_block)
    return config if training is config.training else config.model_copy(update={"training": training})


def plan_with_secret_blocks_loaded(plan: PlanT) -> PlanT:
    """A stage plan (any plan with a `training` config) with its webhook Secret blocks loaded."""
    training = training_with_secret_blocks_loaded(plan.training, load_secret_block)
    return plan if training is plan.training else plan.model_copy(update={"training": training})
