"""aws datasets (SimpleTuner's aws_* keys) on moto's S3 server on 127.0.0.1: the dataset's own endpoint and
credentials reach the bucket (the environment has none), the tiny model trains on it, and the
credentials appear in no log line, stage record, manifest or artifact, nor in a dumped config."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from dreamcore.config import DatasetSpec, RunConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.data.ingest import read_manifest
from dreamcore.storage import ArtifactStore, StageResult

KEY_ID = "dreamcore-config-key-id-7f3a"
SECRET = "dreamcore-config-secret-91c4e"


@pytest.fixture
def bucket_with_images(s3_endpoint, tmp_path, monkeypatch) -> tuple[str, str, list[str]]:
    """(bucket, prefix, captions): demo images and caption files under a prefix; then the environment's
    S3 endpoint and credentials are removed, so only the dataset's aws_* keys can reach them."""
    import s3fs

    demo = write_demo_dataset(tmp_path / "demo", n_images=4, include_masks=False)
    bucket, prefix = f"dreamcore-aws-{uuid.uuid4().hex[:10]}", "photos/subject"
    fs = s3fs.S3FileSystem(key=KEY_ID, secret=SECRET, endpoint_url=s3_endpoint, skip_instance_cache=True)
    fs.mkdir(bucket)
    captions = []
    for path in sorted(demo.images_dir.iterdir()):
        fs.pipe_file(f"{bucket}/{prefix}/{path.name}", path.read_bytes())
        if path.suffix == ".txt":
            captions.append(path.read_text().strip())
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return bucket, prefix, captions


def _aws_dataset(endpoint: str, bucket: str, prefix: str) -> dict:
    return {
        "id": "subject", "type": "aws", "aws_bucket_name": bucket, "aws_data_prefix": prefix,
        "aws_endpoint_url": endpoint, "aws_region_name": "us-east-1", "aws_access_key_id": KEY_ID,
        "aws_secret_access_key": SECRET, "caption_strategy": "textfile", "resolution": 64, "crop": True,
        "crop_aspect": "square",
    }


def _every_stored_byte(root: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


@pytest.mark.usefixtures("one_torch_thread")
def test_an_aws_dataset_on_moto_trains_and_keeps_its_credentials_private(
    bucket_with_images, s3_endpoint, tmp_path, tiny_models, caplog
) -> None:
    from dreamcore.pipeline import run_ingest, run_train

    bucket, prefix, captions = bucket_with_images
    root = tmp_path / "artifacts"
    config = RunConfig.model_validate({"training": {
        "pretrained_model_name_or_path": str(tiny_models["sd"]), "model_family": "sd1x", "mixed_precision": "no",
        "storage_root": str(root), "max_train_steps": 2, "checkpointing_steps": 2, "train_batch_size": 2,
        "lora_rank": 4, "learning_rate": 1e-2, "optimizer": "adamw"},
        "datasets": [_aws_dataset(s3_endpoint, bucket, prefix)]})
    store = ArtifactStore(str(root))
    with caplog.at_level(logging.DEBUG):
        ingested = run_ingest(config, store)["subject"]
        assert ingested["counts"] == {"accepted": 4, "rejected": 0}
        manifest = read_manifest(store, StageResult.model_validate(ingested))
        assert sorted(c for row in manifest for c in row["captions"]) == sorted(captions)
        trained = StageResult.model_validate(run_train(config, store)["train"])
    assert trained.counts["steps"] == 2
    assert store.exists(f"train/{trained.key}/export/diffusers/pytorch_lora_weights.safetensors")

    stored = _every_stored_byte(root)
    dumped = config.model_dump_json() + repr(config) + str(config.datasets[0])
    # botocore's own DEBUG lines show the key id (it is in every signed request's header), never the secret.
    assert SECRET not in caplog.text
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert logged  # the search covers real log lines
    for secret in (KEY_ID, SECRET):
        assert secret.encode() not in stored
        assert secret not in logged
        assert secret not in dumped
    assert config.datasets[0].model_dump(mode="json")["aws_secret_access_key"] == "**********"


def test_wrong_credentials_do_not_fall_back_and_a_redacted_config_is_refused(bucket_with_images, s3_endpoint) -> None:
    from dreamcore.data.ingest import scan_dataset

    bucket, prefix, _ = bucket_with_images
    spec = DatasetSpec.model_validate(_aws_dataset(s3_endpoint, bucket, prefix))
    assert len(scan_dataset(spec).images) == 4
    elsewhere = spec.model_copy(update={"aws_data_prefix": "no/such/prefix"})
    with pytest.raises(FileNotFoundError, match=f"s3://{bucket}/no/such/prefix at {s3_endpoint} does not exist"):
        scan_dataset(elsewhere)
    redacted = DatasetSpec.model_validate(spec.model_dump(mode="json"))
    with pytest.raises(ValueError, match="aws_access_key_id is '\\*+', the redacted copy"):
        scan_dataset(redacted)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "needs aws_bucket_name"),
        ({"aws_bucket_name": "b", "aws_access_key_id": "k"}, "set both aws_access_key_id and aws_secret_access_key"),
        ({"aws_bucket_name": "b", "instance_data_dir": "s3://b/x"}, "a prefix inside aws_bucket_name"),
    ],
)
def test_aws_settings_that_cannot_work_are_refused(entry, message) -> None:
    with pytest.raises(ValueError, match=message):
        DatasetSpec.model_validate({"id": "s3", "type": "aws", **entry})
    with pytest.raises(ValueError, match="aws_bucket_name is a key of aws datasets"):
        DatasetSpec.model_validate({"id": "x", "instance_data_dir": "/data", "aws_bucket_name": "b"})
