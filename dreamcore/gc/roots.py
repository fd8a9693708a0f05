"""The stage keys a config resolves to now: what `dreamcore run CONFIG` would find Cached."""

from __future__ import annotations

from dreamcore.config import RunConfig
from dreamcore.storage import ArtifactStore


def config_root_keys(config: RunConfig, store: ArtifactStore) -> set[str]:
    """Keys of the committed stages of `config`'s current data, as far down the pipeline as they are
    committed (generation, ingest, caches, train and the evaluations of that training)."""
    from dreamcore.cache.stages import committed_ingests, text_cache_job, vae_cache_jobs
    from dreamcore.cache.text import text_cache_key
    from dreamcore.cache.vae import vae_cache_key
    from dreamcore.evaluate.stage import EvaluateDetails, committed_evaluations
    from dreamcore.pipeline.generated import committed_generation, with_generated_datasets
    from dreamcore.train.stage import find_train_result

    keys: set[str] = set()
    try:
        generated = committed_generation(config, store)
        keys |= {r.key for r in generated["masks"].values()}
        if generated["class_images"] is not None:
            keys.add(generated["class_images"].key)
        config = with_generated_datasets(config, generated)
        ingests = committed_ingests(config, store)
        keys |= {r.key for r in ingests.values()}
        keys |= {vae_cache_key(job) for job in vae_cache_jobs(config, ingests).values()}
        keys.add(text_cache_key(text_cache_job(config, ingests)))
        train = find_train_result(config, store).key
        keys.add(train)
        keys |= {r.key for r in committed_evaluations(store) if EvaluateDetails.of(r).train_key == train}
    except (RuntimeError, ValueError, FileNotFoundError):
        return keys  # not committed that far: what is committed so far is kept
    return keys
