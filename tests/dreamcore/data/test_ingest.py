"""The ingest stage on awkward inputs, and its idempotency on local and S3 storage."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from dreamcore.config import DatasetSpec
from dreamcore.data.demo import (
    BAD_FILES_MINIMUM_IMAGE_SIZE,
    INSTANCE_PROMPT,
    write_bad_files,
    write_demo_dataset,
)
from dreamcore.data.ingest import (
    DatasetChangedError,
    EmptyDatasetError,
    ingest_dataset,
    ingest_key,
    ingest_planned,
    plan_ingest,
    read_manifest,
    scan_dataset,
)
from dreamcore.storage import SUCCESS_MARKER, ArtifactStore


def spec_for(folder: Path | str, **overrides) -> DatasetSpec:
    values = {
        "id": "subject",
        "instance_data_dir": str(folder),
        "caption_strategy": "textfile",
        "minimum_image_size": BAD_FILES_MINIMUM_IMAGE_SIZE,
        "resolution_type": "pixel",
    }
    values.update(overrides)
    return DatasetSpec.model_validate(values)


@pytest.fixture(scope="module")
def bad_zoo(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("zoo")
    return folder, write_bad_files(folder)


def test_every_awkward_file_gets_the_expected_verdict(bad_zoo, tmp_path: Path) -> None:
    folder, expected = bad_zoo
    store = ArtifactStore(str(tmp_path / "artifacts"))
    outcome = ingest_dataset(store, scan_dataset(spec_for(folder)))
    rows = {row["path"]: row for row in read_manifest(store, outcome.result)}
    assert set(rows) == set(expected)
    for name, want in expected.items():
        row = rows[name]
        assert row["status"] == want.status, (name, row["reason"])
        assert want.reason in row["reason"], (name, row["reason"])
        if want.size is not None:
            assert (row["width"], row["height"]) == want.size, name
        if want.mode_in:
            assert row["mode"] == want.mode_in, name
        if want.duplicate_of:
            assert want.duplicate_of in row["reason"]
        if want.status == "ok":
            assert row["captions"] == [INSTANCE_PROMPT], name
    accepted = sum(w.status == "ok" for w in expected.values())
    assert outcome.result.counts == {"accepted": accepted, "rejected": len(expected) - accepted}


def test_exif_rotated_image_has_width_and_height_swapped(tmp_path: Path) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=3)
    rotated = [p for p in demo.image_paths if p.suffix == ".jpg"]
    assert rotated
    stored = Image.open(rotated[0])
    store = ArtifactStore(str(tmp_path / "artifacts"))
    outcome = ingest_dataset(store, scan_dataset(spec_for(demo.images_dir, minimum_image_size=None)))
    row = {r["path"]: r for r in read_manifest(store, outcome.result)}[rotated[0].name]
    assert (row["width"], row["height"]) == (stored.height, stored.width)


def test_caption_strategies_fill_the_manifest(tmp_path: Path) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=2)
    store = ArtifactStore(str(tmp_path / "artifacts"))
    by_strategy = {}
    for strategy, extra in (("textfile", {}), ("filename", {}), ("instanceprompt", {"instance_prompt": "sks toy"})):
        spec = spec_for(demo.images_dir, caption_strategy=strategy, minimum_image_size=None, **extra)
        rows = read_manifest(store, ingest_dataset(store, scan_dataset(spec)).result)
        by_strategy[strategy] = [r["captions"] for r in rows if r["status"] != "skipped"]  # unused .txt: skipped
    assert by_strategy["textfile"] == [[c] for c in demo.captions]
    assert by_strategy["filename"] == [["toy"], ["toy"]]
    assert by_strategy["instanceprompt"] == [["sks toy"], ["sks toy"]]


def test_dataset_with_no_usable_image_stops_with_reasons(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"")
    (folder / "b.jpg").write_text("not a picture")
    store = ArtifactStore(str(tmp_path / "artifacts"))
    with pytest.raises(EmptyDatasetError) as error:
        ingest_dataset(store, scan_dataset(spec_for(folder, id="my-subject")))
    message = str(error.value)
    assert "'my-subject'" in message and "a.png: empty file" in message and "b.jpg: not an image" in message
    assert store.list("ingest") == []  # nothing committed, nothing half-written


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset 'subject': instance_data_dir .*does not exist"):
        scan_dataset(spec_for(tmp_path / "nope"))


def test_second_run_decodes_nothing_and_a_changed_image_reingests(storage_root: str, tmp_path: Path) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=4)
    store = ArtifactStore(storage_root)
    spec = spec_for(demo.images_dir, minimum_image_size=None)
    first = ingest_dataset(store, scan_dataset(spec))
    assert first.decoded == 4
    marker = f"ingest/{first.result.key}/{SUCCESS_MARKER}"
    assert store.exists(marker)
    again = ingest_dataset(store, scan_dataset(spec))
    assert again.decoded == 0
    assert again.result == first.result

    Image.new("RGB", (90, 90), (0, 255, 0)).save(demo.image_paths[0])
    changed = ingest_dataset(store, scan_dataset(spec))
    assert changed.decoded == 4
    assert changed.result.key != first.result.key
    assert changed.result.digest != first.result.digest


def test_dataset_read_from_s3(s3_root: str, tmp_path: Path) -> None:
    import s3fs

    demo = write_demo_dataset(tmp_path / "demo", n_images=3)
    data_url = s3_root.replace("/artifacts", "/datasets/subject")
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.put(str(demo.images_dir), data_url, recursive=True)
    spec = spec_for(data_url, type="fsspec", minimum_image_size=None)
    store = ArtifactStore(s3_root)
    outcome = ingest_dataset(store, scan_dataset(spec))
    assert outcome.result.counts == {"accepted": 3, "rejected": 0}
    assert outcome.result.output_uri.startswith("s3://")
    table = pq.read_table(io.BytesIO(store.read_bytes(outcome.result.details["manifest"])))
    assert table.column_names == ["path", "digest", "width", "height", "mode", "captions", "status", "reason"]


def test_identical_masks_are_not_duplicates(tmp_path: Path) -> None:
    folder = tmp_path / "masks"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("L", (80, 80), 255).save(folder / name)
    spec = DatasetSpec(id="masks", dataset_type="conditioning", conditioning_type="mask", instance_data_dir=str(folder))
    store = ArtifactStore(str(tmp_path / "artifacts"))
    assert ingest_dataset(store, scan_dataset(spec)).result.counts == {"accepted": 2, "rejected": 0}


def test_parquet_caption_table_feeds_the_manifest_and_the_key(tmp_path: Path) -> None:
    import pyarrow as pa

    demo = write_demo_dataset(tmp_path / "demo", n_images=2, caption_files=False)
    table = demo.images_dir / "captions.parquet"
    names = [p.name for p in demo.image_paths]
    pq.write_table(pa.table({"id": names, "caption": ["sks toy on grass", "sks toy at night"]}), table)
    spec = spec_for(demo.images_dir, caption_strategy="parquet", minimum_image_size=None,
                    parquet={"path": "captions.parquet", "identifier_includes_extension": True})
    store = ArtifactStore(str(tmp_path / "artifacts"))
    first = ingest_dataset(store, scan_dataset(spec))
    assert [r["captions"] for r in read_manifest(store, first.result)] == [["sks toy on grass"], ["sks toy at night"]]

    pq.write_table(pa.table({"id": names, "caption": ["sks toy on sand", "sks toy at night"]}), table)
    second = ingest_dataset(store, scan_dataset(spec))
    assert second.decoded == 2 and second.result.key != first.result.key
    assert read_manifest(store, second.result)[0]["captions"] == ["sks toy on sand"]


def test_files_ingest_does_not_read_are_listed_as_skipped_with_a_reason(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    write_demo_dataset(folder, n_images=2, include_masks=False)
    clean_key = scan_dataset(spec_for(folder)).fingerprint()
    frames = [Image.new("RGB", (64, 64), colour) for colour in ("red", "blue")]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    (folder / "notes.txt").write_text("not a caption of anything\n")
    (folder / "raw.cr2").write_bytes(b"raw camera bytes")
    store = ArtifactStore(str(tmp_path / "artifacts"))
    source = scan_dataset(spec_for(folder))
    outcome = ingest_dataset(store, source)
    rows = {row["path"]: row for row in read_manifest(store, outcome.result)}
    skipped = {path: row["reason"] for path, row in rows.items() if row["status"] == "skipped"}
    assert set(skipped) == {"animated.gif", "notes.txt", "raw.cr2"}
    assert "GIF is not read" in skipped["animated.gif"] and "convert it to PNG" in skipped["animated.gif"]
    assert skipped["notes.txt"] == "caption file without an image of the same name"
    assert "not an image file (.cr2)" in skipped["raw.cr2"]
    assert outcome.result.counts == {"accepted": 2, "rejected": 0, "skipped": 3}
    assert not any(path.endswith(".txt") for path in rows if path != "notes.txt")  # used captions are not listed
    # A stray file changes the manifest, so the key; without them the folder has its earlier key.
    assert source.fingerprint() != clean_key
    for name in skipped:
        (folder / name).unlink()
    assert scan_dataset(spec_for(folder)).fingerprint() == clean_key


def test_a_plan_runs_under_its_key_and_a_dataset_changed_since_is_an_error(storage_root: str, tmp_path: Path) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=2)
    spec = spec_for(demo.images_dir)
    plan = plan_ingest(spec)
    assert plan.key == ingest_key(scan_dataset(spec))
    store = ArtifactStore(storage_root)
    assert ingest_planned(store, plan).result.key == plan.key
    Image.new("RGB", (96, 96), "red").save(demo.images_dir / "added.png")
    with pytest.raises(DatasetChangedError, match="dataset 'subject'"):
        ingest_planned(store, plan)
