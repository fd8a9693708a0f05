"""Run by test_train_multiprocess under `torchrun --nproc_per_node 2`: one train stage on two CPU processes.

Each process writes <out>/rank<N>.json: world size, a digest of its own trained tensors, the batch
stream position and every file it wrote to the store.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

from dreamcore.config import TrainingConfig
from dreamcore.storage import ArtifactStore
from dreamcore.train.memory import InMemoryBatchSource
from dreamcore.train.plan import plan_training
from dreamcore.train.stage import train_stage
from dreamcore.train.trainer import make_accelerator


class CountingStore(ArtifactStore):
    """An ArtifactStore that remembers every file this process writes."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.writes: list[str] = []

    def write_bytes(self, relative: str, data: bytes) -> str:
        self.writes.append(relative)
        return super().write_bytes(relative, data)

    def create_new(self, relative: str, data: bytes) -> bool:  # leases and the exclusive commit marker
        if not relative.startswith("_leases/"):
            self.writes.append(relative)
        return super().create_new(relative, data)


def main(samples_file: str, config_file: str, root: str, out: str) -> None:
    torch.set_num_threads(1)
    samples = torch.load(samples_file, weights_only=False)
    config = TrainingConfig.model_validate_json(Path(config_file).read_text())
    accelerator = make_accelerator(config)
    store = CountingStore(root)
    source = InMemoryBatchSource(samples, config.train_batch_size, seed=0)
    digests = {}

    def on_trained(outcome) -> None:
        state = outcome.adapter.trainable_state()
        digest = hashlib.sha256()
        for name in sorted(state):
            digest.update(name.encode() + state[name].numpy().tobytes())
        digests["trained"] = digest.hexdigest()
        digests["final_loss"] = outcome.history[-1]["loss"]

    result = train_stage(plan_training(config, {"latents": "d"}), store, source, accelerator=accelerator,
                         on_trained=on_trained, show_progress=False)
    report = {"rank": accelerator.process_index, "world": accelerator.num_processes, "writes": store.writes,
              "trained_digest": digests["trained"], "final_loss": digests["final_loss"], "result": result.model_dump(),
              "source_position": source.state_dict()["position"]}
    Path(out, f"rank{accelerator.process_index}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:5])
