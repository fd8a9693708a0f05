"""Flow: find a rare token for the instance prompt of a run's base model."""

from __future__ import annotations

from prefect import flow

from dreamcore.config import RunConfig
from dreamcore.storage import StageResult
from dreamcore.tokens import TokenSearchOptions, plan_tokens
from tasks.results import result_storage_for
from tasks.tokens import find_tokens


@flow(name="rare-tokens", log_prints=True)
def tokens_flow(
    config: RunConfig, options: TokenSearchOptions | None = None, wordlist: str | None = None
) -> StageResult:
    """Rank rare single-token identifiers of the base model; the result names the best instance prompt."""
    root = config.training.resolved_storage_root
    find = find_tokens.with_options(result_storage=result_storage_for(root))
    return find(plan_tokens(config.training.pretrained_model_name_or_path, options, wordlist), root)
