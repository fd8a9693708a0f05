"""Helpers shared by the reliability tests (gc during a training, paused lease holders, lost endpoints)."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

from dreamcore.storage import ArtifactStore, StageResult


def short_demo(workdir: Path, storage_root: str, **settings) -> Path:
    """The demo project on `storage_root`, cut down: 4 steps, a checkpoint every 2, no validation."""
    from dreamcore.demo import write_demo_project

    path = write_demo_project(workdir)
    document = json.loads(path.read_text())
    document |= {"--storage_root": storage_root, "--max_train_steps": 4, "--checkpointing_steps": 2,
                 "--validation_disable": True} | {f"--{k}": v for k, v in settings.items()}
    document.pop("--eval_steps_interval", None)
    path.write_text(json.dumps(document))
    return path


def files_under(store: ArtifactStore, ignore: tuple[str, ...] = ("_leases/",)) -> dict[str, int]:
    """Every file under the root (relative path -> size), leases and clock probes left out."""
    prefix = len(store.root_path) + 1
    store.invalidate()
    return {path[prefix:]: info.get("size", 0) for path, info in store.fs.find(store.root_path, detail=True).items()
            if info.get("type") != "directory" and not path[prefix:].startswith(ignore)}


def age_files(store: ArtifactStore, hours: float) -> int:
    """Set every file's modification time `hours` back: local mtimes, or moto's objects' LastModified
    (the moto server runs in this process). Returns how many files were aged."""
    if store.is_local:
        count = 0
        for root, _, names in os.walk(store.root_path):
            for name in names:
                path = os.path.join(root, name)
                stat = os.stat(path)
                os.utime(path, (stat.st_atime - hours * 3600, stat.st_mtime - hours * 3600))
                count += 1
        return count
    from moto.s3.models import s3_backends

    bucket_name = store.root_path.split("/", 1)[0]
    count = 0
    for account in list(s3_backends.keys()):
        for backend in s3_backends[account].values():
            bucket = backend.buckets.get(bucket_name)
            if bucket is None:
                continue
            for _, versions in bucket.keys._iterlists():
                for key in versions:
                    key.last_modified -= timedelta(hours=hours)
                    count += 1
    return count


def wait_for(condition, timeout: float, every: float = 0.1) -> bool:
    """Poll `condition()` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())


def export_loads(store: ArtifactStore, result: StageResult, config) -> list[str]:
    """Load a committed training's final export into the stock pipeline; the active adapters' names."""
    from dreamcore.drawing.weights import applied, weights_of_training
    from dreamcore.models import load_pipeline

    model = config.training.pretrained_model_name_or_path
    pipe = load_pipeline(model)
    final = next(ref for ref in weights_of_training(store, result) if ref.name == "final")
    with applied(pipe, final, config.training, model):
        return list(pipe.get_active_adapters())
