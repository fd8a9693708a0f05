"""Prefect task for the rare-token finder: the "tokens" stage with table, prompt and progress artifacts."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from dreamcore.storage import ArtifactStore, StageResult
from dreamcore.tokens import TokensPlan, find_tokens_stage, read_token_table
from tasks.stage_task import stage_task

_NOT_WORTH_RETRYING = (FileNotFoundError, ValueError)
# Progress artifact updates are API calls: report every 5 % rather than every batch.
_PROGRESS_STEP = 5.0


@stage_task("tokens", name="find-tokens", bad_input=_NOT_WORTH_RETRYING, retries=2, retry_delay_seconds=5)
def find_tokens(plan: TokensPlan, storage_root: str) -> StageResult:
    """Rank rare identifier tokens of a model; publish the table and the best instance_prompt."""
    logger = get_run_logger()
    model_path = plan.model_path
    store = ArtifactStore(storage_root)
    progress_id = create_progress_artifact(0.0, description=f"Scanning the vocabulary of {model_path}")
    reported = [0.0]

    def on_progress(done: int, total: int) -> None:
        percent = 100.0 * done / total
        if percent - reported[0] >= _PROGRESS_STEP or done == total:
            update_progress_artifact(progress_id, percent)
            reported[0] = percent

    result, scanned = find_tokens_stage(store, model_path, plan.options, plan.wordlist, on_progress=on_progress,
                                        key=plan.key)
    update_progress_artifact(progress_id, 100.0)
    table = read_token_table(store, result)
    logger.info(
        "%s; best instance prompt %r (%s)",
        table["summary"],
        result.details["instance_prompt"],
        "scanned now" if scanned else "reused the committed search",
    )
    create_table_artifact(
        key="rare-tokens",
        table=[
            {k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()} for row in table["rows"]
        ],
        description=f"Rare-token candidates of `{model_path}`. {table['score']}",
    )
    create_markdown_artifact(
        key="rare-token-prompt",
        markdown=store.read_bytes(result.details["report"]).decode(),
        description="The best rare token as an instance_prompt snippet",
    )
    return result
