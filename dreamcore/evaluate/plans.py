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
    if family.conditions_on_references:
        return edit_validation_plan(config, store)
    if family.refines_images and first_stage_of(config.training, family) is None:
        return replace(refiner_validation_plan(config, store), source_scale=family.upscale_factor)
    return ValidationPlan.from_config(config.training)


def refiner_validation_plan(config: RunConfig, store: ArtifactStore) -> ValidationPlan:
    """num_validation_images seeded-random accepted subject images, with their first captions, one seed each."""
    return _seeded_sources_plan(config, store, subject_images, "refiner-validation",
                                "refiner validation refines dataset images, but no image dataset (other than "
                                "regularisation data) has accepted images; check the ingest report")


def edit_validation_plan(config: RunConfig, store: ArtifactStore) -> ValidationPlan:
    """An edit model's validation: num_validation_images seeded-random edit images, each drawn from its paired
    reference with its first caption (the edit instruction). Held out when the dataset list has an eval dataset
    that pairs references (SimpleTuner's eval_dataset_id split), else from the training edit datasets."""
    return _seeded_sources_plan(config, store, edit_pairs, "edit-validation",
                                "an edit model validates by editing reference images, but no image or eval dataset "
                                "pairs references (conditioning_data naming a reference_strict / reference_loose "
                                "dataset); add one or set validation_disable", edits=True)


def _seeded_sources_plan(config: RunConfig, store: ArtifactStore, candidates_of, salt: str, none_found: str,
                         **extra) -> ValidationPlan:
    """The config's plan drawing from num_validation_images (digest, source URI, caption) candidates picked by a
    seeded draw, one seed each; ValueError(`none_found`) when there are none."""
    plan = ValidationPlan.from_config(config.training)
    if config.training.validation_disable:
        return plan
    candidates = candidates_of(config, store)
    if not candidates:
        raise ValueError(none_found)
    rng = random.Random(f"{salt}-{plan.seeds[0]}")
    picked = rng.sample(candidates, min(config.training.num_validation_images, len(candidates)))
    return replace(plan, prompts=tuple(caption for _, _, caption in picked),
                   sources=tuple(uri for _, uri, _ in picked), seeds=plan.seeds[:1], sizes=(), **extra)


def edit_pairs(config: RunConfig, store: ArtifactStore) -> list[tuple[str, str, str]]:
    """(edit image digest, its reference's URI, the edit's first caption) of every accepted edit image, sorted by
    digest: the eval datasets' when one pairs references, else the image datasets'."""
    from dreamcore.cache.conditioning import pair_references
    from dreamcore.cache.stages import committed_ingests
    from dreamcore.data.ingest import read_manifest

    ingests = committed_ingests(config, store)
    edits = [s for s in config.datasets if config.reference_datasets(s) and s.id in ingests
             and not s.is_regularisation_data]
    held_out = [s for s in edits if s.dataset_type == "eval"]
    found = {}
    for spec in held_out or [s for s in edits if s.dataset_type == "image"]:
        reference = config.reference_datasets(spec)[0]  # the pipeline draws from one reference image
        if reference.type in ("huggingface", "aws"):
            raise ValueError(f"dataset {reference.id!r}: edit validation draws from reference images read by path "
                             f"or URL, which a {reference.type} dataset does not have; set validation_disable")
        accepted = [r for r in read_manifest(store, ingests[spec.id]) if r["status"] == "ok"]
        pairs = pair_references(accepted, read_manifest(store, ingests[reference.id]), dataset_id=spec.id,
                                reference_dataset_id=reference.id)
        for row in accepted:
            uri = posixpath.join(reference.instance_data_dir.rstrip("/"), pairs[row["path"]]["path"])
            found.setdefault(row["digest"], (row["digest"], uri, (row["captions"] or [""])[0]))
    return [found[digest] for digest in sorted(found)]


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
