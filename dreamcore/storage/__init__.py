"""fsspec artifact storage and the stage contract."""

from dreamcore.storage.stages import (
    SUCCESS_MARKER,
    StageDetails,
    StageResult,
    commit,
    committed_result,
    digest_of,
    run_stage,
    stage_dir,
    stage_key,
)
from dreamcore.storage.store import ArtifactStore

__all__ = [
    "SUCCESS_MARKER",
    "ArtifactStore",
    "StageDetails",
    "StageResult",
    "commit",
    "committed_result",
    "digest_of",
    "run_stage",
    "stage_dir",
    "stage_key",
]
