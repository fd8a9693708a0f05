"""Run by test_train_digests in a fresh process: one tiny train stage into a storage root; prints the
StageResult as JSON on the last line."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from dreamcore.config import TrainingConfig
from dreamcore.storage import ArtifactStore
from dreamcore.train.memory import InMemoryBatchSource
from dreamcore.train.plan import plan_training
from dreamcore.train.stage import train_stage
from dreamcore.train.trainer import make_accelerator


def main(samples_file: str, config_file: str, root: str) -> None:
    torch.set_num_threads(1)
    samples = torch.load(samples_file, weights_only=False)
    config = TrainingConfig.model_validate_json(Path(config_file).read_text())
    source = InMemoryBatchSource(samples, config.train_batch_size, seed=0)
    result = train_stage(plan_training(config, {"latents": "d"}), ArtifactStore(root), source, accelerator=make_accelerator(config),
                         show_progress=False)
    print(result.model_dump_json())


if __name__ == "__main__":
    main(*sys.argv[1:])
