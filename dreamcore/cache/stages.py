"""The cache stages of a run: which jobs a config asks for, and the in-process runner (`--stage cache`).

Masks are not a stage of their own: each mask is cropped with its image's plan and stored in the
image's VAE-cache row, so the mask dataset's ingest digest is part of that image dataset's
vae_cache key and a changed mask re-caches exactly the rows it touches.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from dreamcore.cache.text import TextCacheJob, cache_text_embeds, text_cache_key
from dreamcore.cache.vae import ReferenceSource, VaeCacheJob, VaeCacheSettings, cache_vae_latents, vae_cache_key
from dreamcore.config import RunConfig
from dreamcore.data.ingest import STAGE, ingest_key, scan_dataset
from dreamcore.models import detect_family
from dreamcore.storage import ArtifactStore, StageResult, committed_result


class VaeCachePlan(BaseModel):
    """One dataset's VAE cache, keyed once: the job (what the stage reads) and its key."""

    model_config = ConfigDict(frozen=True)

    job: VaeCacheJob
    key: str


class TextCachePlan(BaseModel):
    """The run's text cache, keyed once: the job (what the stage reads) and its key."""

    model_config = ConfigDict(frozen=True)

    job: TextCacheJob
    key: str


def vae_cache_plans(config: RunConfig, ingests: Mapping[str, StageResult]) -> dict[str, VaeCachePlan]:
    """The VAE-cache plan of every image dataset, by dataset id."""
    return {dataset_id: VaeCachePlan(job=job, key=vae_cache_key(job))
            for dataset_id, job in vae_cache_jobs(config, ingests).items()}


def text_cache_plan(config: RunConfig, ingests: Mapping[str, StageResult]) -> TextCachePlan:
    """The text-cache plan of a run."""
    job = text_cache_job(config, ingests)
    return TextCachePlan(job=job, key=text_cache_key(job))


def vae_cache_jobs(config: RunConfig, ingests: Mapping[str, StageResult]) -> dict[str, VaeCacheJob]:
    """One VAE-cache job per image dataset (with its paired mask dataset and reference datasets), by dataset id."""
    training = config.training
    settings = VaeCacheSettings.from_training(training)
    model_family = detect_family(training.pretrained_model_name_or_path)  # once for every dataset's job
    family = model_family.name
    jobs = {}
    for spec in config.datasets:
        if spec.dataset_type != "image":
            continue
        _require(ingests, spec.id)
        masks = config.mask_dataset(spec)
        references = config.reference_datasets(spec)
        if references and not model_family.conditions_on_references:
            raise ValueError(f"dataset {spec.id!r} pairs reference images ({[r.id for r in references]}), but a "
                             f"{family} model is not an edit model; train an edit model (e.g. Flux Kontext) or "
                             "remove the reference datasets from conditioning_data")
        for paired in (masks, *references) if masks else references:
            _require(ingests, paired.id)
        jobs[spec.id] = VaeCacheJob(
            spec=spec,
            ingest=ingests[spec.id],
            model_path=str(training.pretrained_model_name_or_path),
            storage_root=training.resolved_storage_root,
            settings=settings,
            masks=masks,
            masks_ingest=ingests[masks.id] if masks else None,
            family_name=family,
            references=tuple(ReferenceSource(r, ingests[r.id]) for r in references),
        )
    return jobs


def text_cache_job(config: RunConfig, ingests: Mapping[str, StageResult]) -> TextCacheJob:
    """The text-cache job of a run."""
    for spec in config.datasets:
        if spec.dataset_type == "image":
            _require(ingests, spec.id)
    return TextCacheJob.from_config(config, ingests)


def committed_ingests(config: RunConfig, store: ArtifactStore) -> dict[str, StageResult]:
    """The committed ingest result of every image-like dataset (as the data is now)."""
    results = {}
    for spec in config.image_datasets:
        result = committed_result(store, STAGE, ingest_key(scan_dataset(spec)))
        if result is None:
            raise RuntimeError(
                f"dataset {spec.id!r} has no committed ingest for its current files; run the ingest stage first "
                "(dreamcore run CONFIG --stage ingest)"
            )
        results[spec.id] = result
    return results


def run_cache(config: RunConfig, store: ArtifactStore) -> dict:
    """Run vae_cache for every image dataset and text_cache for the run, in this process."""
    ingests = committed_ingests(config, store)
    vae = {}
    for dataset_id, plan in vae_cache_plans(config, ingests).items():
        outcome = cache_vae_latents(store, plan.job, key=plan.key)
        vae[dataset_id] = outcome.result.model_dump() | {"encoded": outcome.encoded, "reused": outcome.reused}
    text_plan = text_cache_plan(config, ingests)
    text = cache_text_embeds(store, text_plan.job, key=text_plan.key)
    return {"vae_cache": vae, "text_cache": text.result.model_dump() | {"encoded": text.encoded, "reused": text.reused}}


def _require(ingests: Mapping[str, StageResult], dataset_id: str) -> None:
    if dataset_id not in ingests:
        raise KeyError(f"no ingest result for dataset {dataset_id!r}; have {sorted(ingests)}")
