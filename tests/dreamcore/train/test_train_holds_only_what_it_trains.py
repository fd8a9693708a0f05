"""Memory: a trainer over the committed caches holds the denoiser it trains, its adapter, optimiser and the
cached rows, and nothing the caches replaced: no pyarrow table, no VAE, text encoder or pipeline."""

from __future__ import annotations

import gc
import types

# Shared by the whole process, not held by the trainer: a walk through a function's globals, a class or a
# module reaches whatever any earlier test left in some module (in the full suite, a pipeline).
_SHARED = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)


def reachable(root) -> list:
    """Every object reachable from `root` through references the garbage collector sees, not walking
    through modules, classes or functions."""
    seen, stack, found = set(), [root], []
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        found.append(item)
        if not isinstance(item, _SHARED):
            stack.extend(gc.get_referents(item))
    return found


def test_a_trainer_on_the_caches_keeps_no_table_encoder_or_pipeline(cached_demo) -> None:
    import pyarrow as pa
    from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
    from transformers import PreTrainedModel

    from dreamcore.cache.batches import open_batch_source
    from dreamcore.storage import ArtifactStore
    from dreamcore.train.trainer import Trainer, make_accelerator

    config, vae_results, text_result = cached_demo
    store = ArtifactStore(config.training.resolved_storage_root)
    accelerator = make_accelerator(config.training)
    batches = open_batch_source(store, config, vae_results, text_result)
    trainer = Trainer(config.training, store, "train/held", batches, accelerator, show_progress=False).setup()
    trainer.loss(next(iter(trainer.batches)))  # batches read: their shards are in memory now

    held = reachable(trainer)
    kinds = {type(item) for item in held}
    assert UNet2DConditionModel in kinds  # what it trains (the walk does reach the models)
    unwanted = (pa.Table, pa.RecordBatch, AutoencoderKL, DiffusionPipeline, PreTrainedModel)
    assert [kind for kind in kinds if issubclass(kind, unwanted)] == []
