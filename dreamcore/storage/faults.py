"""Expected faults at run time, each one line that names the path or URL and says what to do.

A full or read-only disk and missing or refused credentials are not bugs: they reach the user as
RunFault (the CLI prints it and exits 2; the Prefect tasks do not retry it) instead of a traceback
with an OSError that names no file.
"""

from __future__ import annotations

import errno

_WRITE_ADVICE = {
    errno.ENOSPC: "no space left on the device; free space there or point storage_root at a larger volume",
    errno.EDQUOT: "disk quota exceeded; free space or point storage_root elsewhere",
    errno.EFBIG: "file too large for the filesystem or this process's file-size limit (ulimit -f)",
    errno.EROFS: "the filesystem is read-only; point storage_root at a writable folder",
    errno.EACCES: "permission denied; make it writable by this user or point storage_root elsewhere",
    errno.EPERM: "operation not permitted; make it writable by this user or point storage_root elsewhere",
}
_CREDENTIAL_ERRORS = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError",
                      "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}


class RunFault(RuntimeError):
    """An expected fault of a run; str() is one line naming the file, key, URL or path and what to do."""


class StorageFault(RunFault):
    """The storage root cannot be written or reached (disk full, read-only, no or refused credentials)."""


class StorageUnreachable(StorageFault):
    """The storage endpoint stopped answering mid-stage. Unlike other faults a retry may fix it (the tasks
    retry it): what was finished (shards, checkpoints) is kept and resumed, nothing half-done is committed."""


# botocore / aiohttp errors that mean the endpoint is gone (refused, timed out, dropped), not a bad request
_UNREACHABLE_ERRORS = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
                       "ClientConnectorError", "ServerDisconnectedError", "ServerTimeoutError"}


def stage_of(relative: str) -> str:
    """The stage a store path belongs to: its first folder (train/<key>/... -> train)."""
    return relative.split("/", 1)[0] or "?"


def write_fault(uri: str, relative: str, error: OSError) -> StorageFault | None:
    """The StorageFault for a failed write of `relative` (at `uri`), or None when it is not an expected one."""
    advice = _WRITE_ADVICE.get(error.errno)
    if advice is None:
        return None
    return StorageFault(f"{stage_of(relative)} stage: cannot write {uri}: {advice} (nothing was committed)")


def access_fault(root_uri: str, error: BaseException) -> StorageFault | None:
    """The StorageFault for missing or refused credentials on `root_uri`, or None for another error."""
    chain = [error, *_causes(error)]
    names = {type(e).__name__ for e in chain} | {str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
                                                 for e in chain if isinstance(getattr(e, "response", None), dict)}
    if names & _CREDENTIAL_ERRORS:
        return StorageFault(f"storage_root {root_uri}: no usable credentials ({sorted(names & _CREDENTIAL_ERRORS)[0]}); "
                            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) where the run executes")
    if any(isinstance(e, PermissionError) for e in chain):
        return StorageFault(f"storage_root {root_uri}: access denied ({error}); give these credentials read and "
                            "write access to it, or point storage_root elsewhere")
    return None


def unreachable_fault(stage: str, uri: str, error: BaseException) -> StorageUnreachable | None:
    """The StorageUnreachable for `error` when it (or a cause) is a lost connection to the store, else None.
    `uri` is the stage folder being worked on; the line names the endpoint URL that stopped answering."""
    lost = next((e for e in [error, *_causes(error)] if type(e).__name__ in _UNREACHABLE_ERRORS), None)
    if lost is None:
        return None
    endpoint = (getattr(lost, "kwargs", None) or {}).get("endpoint_url") or str(lost)
    return StorageUnreachable(f"{stage} stage: lost the storage endpoint {endpoint} ({type(lost).__name__}) "
                              f"while working on {uri}; nothing was committed; rerun (or let the task retry) "
                              "once it answers again: finished shards and checkpoints are kept and resumed")


def _causes(error: BaseException) -> list[BaseException]:
    found, current = [], error
    while (current := current.__cause__ or current.__context__) is not None and len(found) < 8:
        found.append(current)
    return found
