"""BUCKET_FIELDS is the one list of bucket and crop fields: every user reads all of it."""

from __future__ import annotations

from dataclasses import fields

from dreamcore.config import DatasetSpec, RunConfig, check_dataset_list
from dreamcore.config.datasets import BUCKET_FIELDS, bucket_fields_of
from dreamcore.data.buckets import BucketSettings
from dreamcore.masks.datasets import mask_dataset_spec
from dreamcore.regularise import regularisation_dataset_spec

# A value other than the default for every bucket field (and minimum_image_size), so a field a copy
# forgets shows up as a difference.
SUBJECT = {
    "id": "subject",
    "instance_data_dir": "/data/subject",
    "resolution": 0.5,
    "resolution_type": "area",
    "crop": True,
    "crop_aspect": "random",
    "crop_style": "corner",
    "crop_aspect_buckets": [0.75, {"aspect": 1.5, "weight": 0.25}],
    "maximum_image_size": 2.0,
    "target_downsample_size": 1.0,
    "minimum_image_size": 0.1,
}


def run_config(**training) -> RunConfig:
    base = {"pretrained_model_name_or_path": "/models/sd"}
    return RunConfig.model_validate({"training": base | training, "datasets": [SUBJECT]})


def test_the_subject_sets_every_bucket_field_away_from_its_default() -> None:
    subject = DatasetSpec.model_validate(SUBJECT)
    defaults = DatasetSpec.model_validate({"id": "plain", "instance_data_dir": "/data/plain"})
    assert [n for n in BUCKET_FIELDS if getattr(subject, n) == getattr(defaults, n)] == []


def test_bucket_settings_read_every_bucket_field() -> None:
    assert {f.name for f in fields(BucketSettings)} == {*BUCKET_FIELDS, "alignment"}
    settings = BucketSettings.from_spec(DatasetSpec.model_validate(SUBJECT), alignment=32)
    assert settings == BucketSettings(
        resolution=0.5,
        resolution_type="area",
        crop=True,
        crop_aspect="random",
        crop_style="corner",
        crop_aspect_buckets=((0.75, 1.0), (1.5, 0.25)),
        maximum_image_size=2.0,
        target_downsample_size=1.0,
        alignment=32,
    )
    defaults = BucketSettings(resolution=1024)
    assert [n for n in BUCKET_FIELDS if getattr(settings, n) == getattr(defaults, n)] == []


def test_generated_mask_dataset_buckets_and_filters_like_its_images() -> None:
    config = run_config(mask_generation={"dataset": "subject", "prompt": "toy", "model": "/models/clipseg"})
    subject = config.dataset("subject")
    masks = mask_dataset_spec(config, subject, config.training.mask_generation, "/artifacts/masks/data")
    assert bucket_fields_of(masks) == bucket_fields_of(subject)
    assert masks.minimum_image_size == subject.minimum_image_size
    assert BucketSettings.from_spec(masks) == BucketSettings.from_spec(subject)


def test_class_image_dataset_buckets_exactly_like_its_subject() -> None:
    config = run_config(class_images={"prompt": "a photo of a toy", "count": 2})
    subject = config.dataset("subject")
    regularisation = regularisation_dataset_spec(config, config.training.class_images, "/artifacts/class/data")
    assert bucket_fields_of(regularisation) == bucket_fields_of(subject)
    assert BucketSettings.from_spec(regularisation) == BucketSettings.from_spec(subject)
    # Generated at the sizes class_images asks for: the subject's minimum must not drop them.
    assert regularisation.minimum_image_size is None


def test_a_shared_cache_dir_vae_needs_equal_aspect_buckets_too() -> None:
    shared = SUBJECT | {"cache_dir_vae": "/cache/vae"}
    other = shared | {"id": "other", "crop_aspect_buckets": [0.75, 1.5]}
    same = shared | {"id": "same", "minimum_image_size": None}
    problems = check_dataset_list([DatasetSpec.model_validate(d) for d in (shared, other, same)])
    assert [(p.dataset_id, p.key) for p in problems] == [("other", "cache_dir_vae")]


def test_reading_through_bucket_fields_keeps_cache_keys() -> None:
    # vae_cache keys and latents folders hash as_dict(): the unvalidated default resolution 1024 must
    # stay the int it always was (a JSON dump would write 1024.0 and move every default cache).
    settings = BucketSettings.from_spec(DatasetSpec(id="plain", instance_data_dir="/data/plain"))
    assert repr(settings.as_dict()["resolution"]) == "1024"
