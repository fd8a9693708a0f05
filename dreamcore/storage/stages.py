"""The stage contract: keys, committed outputs, and "skip if already done".

A stage's outputs live under `<root>/<stage>/<key>/`. The stage writes them (atomically, file by
file) and then `commit` writes `_SUCCESS.json` holding the StageResult. Only a folder with that
marker is trusted; anything else in it is a leftover that the stage may resume from or overwrite.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from dreamcore.storage.leases import HeldLease, LeaseLost, create_exclusively, inputs_path, stage_lease
from dreamcore.storage.store import ArtifactStore

logger = logging.getLogger(__name__)

SUCCESS_MARKER = "_SUCCESS.json"


class StageResult(BaseModel):
    """What a stage hands downstream: small and JSON-serialisable (URIs, digests, counts)."""

    stage: str
    key: str
    output_uri: str = Field(description="URL of the stage's committed output folder")
    digest: str = Field(description="content digest of what the stage produced")
    counts: dict[str, int] = Field(default_factory=dict)
    report_uri: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class StageDetails(BaseModel):
    """The typed `details` of one stage's results: what the stage hands the next, read by attribute.

    A stage writes `details=SomeDetails(...).model_dump()` and readers call `SomeDetails.of(result)`, so the
    `_SUCCESS.json` markers keep their JSON shape and markers committed before keep loading; keys a stage
    wrote that its model does not name (older or newer markers) are kept, not refused.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    @classmethod
    def of(cls, result: StageResult) -> Self:
        """The details of `result` as this stage's model."""
        return cls.model_validate(result.details)


def canonical_json(value: Any) -> str:
    """Deterministic JSON for hashing (sorted keys, no whitespace)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_jsonable)


def digest_of(value: Any) -> str:
    """sha256 hex of a value's canonical JSON."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def stage_key(
    stage: str,
    version: int,
    config: dict[str, Any],
    upstream: dict[str, str] | None = None,
    model_fingerprint: str | None = None,
) -> str:
    """The stage key of DESIGN.md: what the stage reads, never run ids, clocks or local paths."""
    material = {
        "stage": stage,
        "version": version,
        "config": config,
        "upstream": upstream or {},
        "model": model_fingerprint,
    }
    return digest_of(material)[:20]


def stage_dir(stage: str, key: str) -> str:
    """Relative folder of a stage's outputs."""
    return f"{stage}/{key}"


def committed_result(store: ArtifactStore, stage: str, key: str) -> StageResult | None:
    """The committed StageResult, or None if the stage never finished for this key."""
    marker = f"{stage_dir(stage, key)}/{SUCCESS_MARKER}"
    store.invalidate()
    if not store.exists(marker):
        return None
    return StageResult.model_validate(store.read_json(marker))


def commit(store: ArtifactStore, result: StageResult) -> StageResult:
    """Write the success marker last: from now on readers trust this output folder."""
    store.write_json(f"{stage_dir(result.stage, result.key)}/{SUCCESS_MARKER}", result.model_dump())
    return result


def committed_by(store: ArtifactStore, stage: str, key: str) -> str | None:
    """Who committed `stage`/`key` (the lease owner its marker names, or "another run"), None when uncommitted."""
    marker = f"{stage_dir(stage, key)}/{SUCCESS_MARKER}"
    store.invalidate()
    if not store.exists(marker):
        return None
    try:
        return store.read_json(marker).get("committed_by") or "another run"
    except (FileNotFoundError, json.JSONDecodeError):  # being written right now
        return "another run"


def commit_held(store: ArtifactStore, result: StageResult, held: HeldLease) -> StageResult:
    """Commit under a held lease: the lease is checked first and the marker (naming its owner) is created
    exclusively, so a holder that lost its lease never overwrites the commit of the run that took over."""
    held.check()
    marker = f"{stage_dir(result.stage, result.key)}/{SUCCESS_MARKER}"
    document = result.model_dump() | {"committed_by": held.owner}
    created = create_exclusively(store, marker, json.dumps(document, indent=2, sort_keys=True).encode())
    # a PUT retried after its answer was lost finds its own marker: that is our commit
    if not created and (winner := committed_by(store, result.stage, result.key)) != held.owner:
        raise LeaseLost(f"lost the lease on {result.stage}/{result.key} to {winner}; stopping without writing")
    return result


def run_stage(
    store: ArtifactStore,
    stage: str,
    key: str,
    build: Callable[[str], StageResult],
    reads: Iterable[str] = (),
) -> tuple[StageResult, bool]:
    """Return the committed result for `key`, or call `build(relative_dir)` and commit it.

    The second value says whether work was done. `build` must write every output under the
    folder it is given before returning. While it builds, this process holds the key's lease
    (storage.leases): another run with the same key waits for the commit and reuses it. `reads`
    (URIs of the stage folders, files or cache locations it reads) are kept by gc meanwhile.
    """
    done = committed_result(store, stage, key)
    if done is not None:
        return done, False
    with stage_lease(store, stage, key, lambda: committed_by(store, stage, key), reads=reads) as held:
        if not held:  # another run committed this key while we waited for its lease
            return committed_result(store, stage, key), False
        try:
            result = build(stage_dir(stage, key))
        except Exception:
            _drop_lone_inputs_record(store, stage, key)
            raise
        if (result.stage, result.key) != (stage, key):
            raise ValueError(f"stage {stage!r} built a result for {result.stage}/{result.key}")
        return commit_held(store, result, held), True


def _drop_lone_inputs_record(store: ArtifactStore, stage: str, key: str) -> None:
    """After a failed build that wrote nothing, remove the _INPUTS.json its lease wrote: there is nothing to
    resume for gc to protect, and a stage folder should not outlive bad input (best effort: the store may be
    the thing that failed)."""
    try:
        if store.list(stage_dir(stage, key)) == [inputs_path(stage, key)]:
            store.remove(stage_dir(stage, key))
    except Exception:  # the build's own error is the one to raise
        logger.debug("could not tidy %s/%s after a failed build", stage, key, exc_info=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot hash {type(value).__name__} into a stage key")
