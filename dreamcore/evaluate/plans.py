"""What validation draws for a model family: the configured prompts, or dataset images to refine.

An image-to-image family (the SDXL refiner) ignores the validation prompts (as SimpleTuner
documents) and refines `num_validation_images` subject images instead, each with its own caption, chosen by a seeded draw
over the images' content digests, so the same data and seed always pick the same images.
"""

from __future__ import annotations

import posixpath
import random
from dataclasses import replace
from typing import TYPE_CHECKING

from dreamcore.drawing.cascade import first_stage_of
from dreamcore.evaluate.validation import ValidationPlan

if TYPE_CHECKING:
    from dreamcore.config import RunConfig
    from dreamcore.models import ModelFamily
    from dreamcore.storage import ArtifactStore


def validation_plan_for(config: RunConfig, store: ArtifactStore, family: ModelFamily) -> ValidationPlan:
    """What validation draws for a model family: prompts, or (an img2img family) dataset images to refine; an
    upscaler whose config names its first stage draws the prompts through it (drawing.cascade)."""
    family.check_validation(config.training)
    if family.refines_images and first_stage_of(config.training, family) is None:
        return replace(refiner_validation_plan(config, store), source_scale=family.upscale_factor)
    return ValidationPlan.from_config(config.training)


def refiner_validation_plan(config: RunConfig, store: ArtifactStore) -> ValidationPlan:
    """num_validation_images seeded-random accepted subject images, with their first captions, one seed each."""
    plan = ValidationPlan.from_config(config.training)
    if config.training.validation_disable:
        return plan
    candidates = subject_images(config, store)
    if not candidates:
        raise ValueError("refiner validation refines dataset images, but no image dataset (other than "
                         "regularisation data) has accepted images; check the ingest report")
    rng = random.Random(f"refiner-validation-{plan.seeds[0]}")
    picked = rng.sample(candidates, min(config.training.num_validation_images, len(candidates)))
    return replace(plan, prompts=tuple(caption for _, _, caption in picked),
                   sources=tuple(uri for _, uri, _ in picked), seeds=plan.seeds[:1], sizes=())


def subject_images(config: RunConfig, store: ArtifactStore) -> list[tuple[str, str, str]]:
    """(content digest, URI, first caption) of every accepted subject image, sorted by digest."""
    from dreamcore.cache.stages import committed_ingests
    from dreamcore.data.ingest import read_manifest

    ingests = committed_ingests(config, store)
    found = {}
    for spec in config.datasets:
        if spec.dataset_type != "image" or spec.is_regularisation_data or spec.id not in ingests:
            continue
        if spec.type in ("huggingface", "aws"):
            # Validation sources are stored as plain URIs, which carry no dataset rows or credentials.
            raise ValueError(
                f"dataset {spec.id!r}: refiner validation refines subject images read by path or URL, which a "
                f"{spec.type} dataset does not have; set validation_disable or train the refiner on a local or "
                "fsspec dataset"
            )
        for row in read_manifest(store, ingests[spec.id]):
            if row["status"] == "ok":
                uri = posixpath.join(spec.instance_data_dir.rstrip("/"), row["path"])
                found.setdefault(row["digest"], (row["digest"], uri, (row["captions"] or [""])[0]))
    return [found[digest] for digest in sorted(found)]
