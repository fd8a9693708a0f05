"""The training-speed benchmark's two loops run on the tiny model (so the script does not rot)."""

import pytest


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    import train_speed

    work = tmp_path_factory.mktemp("train-speed")
    model, family = train_speed.model_folder("tiny", work / "models")
    configs = train_speed.write_project(work, model, family, resolution=64, batch=2, steps=3)
    train_speed.build_caches(configs["lora"])
    return configs


@pytest.mark.parametrize("loop", ["cached", "uncached"])
def test_both_loops_train_and_time_their_steps(project, loop):
    import train_speed

    row = train_speed.run_one(project["lora"], "lora", loop, steps=2, warmup=1, threads=1)

    assert row["steps_per_s"] > 0 and row["peak_mb"] > 0
    assert (row["encode_ms"] > 0) == (loop == "uncached")  # only the uncached loop encodes


def test_cached_loop_is_the_train_stage_source_over_the_committed_caches(project):
    import train_speed

    from dreamcore.cache.batches import CachedBatchSource
    from dreamcore.config import load_run_config
    from dreamcore.storage import ArtifactStore

    config = load_run_config(project["full"])
    source = train_speed.cached_source(config, ArtifactStore(config.training.resolved_storage_root))

    assert isinstance(source, CachedBatchSource)
    assert next(iter(source)).latents.shape == (2, 4, 32, 32)


def test_a_model_folder_the_uncached_loop_cannot_encode_for_is_refused(tiny_models, tmp_path):
    import train_speed

    with pytest.raises(SystemExit, match="sdxl folder"):
        train_speed.model_folder(str(tiny_models["sdxl"]), tmp_path)
    with pytest.raises(SystemExit, match="no model_index.json"):
        train_speed.model_folder(str(tmp_path), tmp_path)
    assert train_speed.model_folder(str(tiny_models["sd"]), tmp_path) == (tiny_models["sd"], "sd1")
