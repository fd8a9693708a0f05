"""The stage declaration is whole, and local stage runs (`dreamcore run --stage`) see the generated
mask and class-image datasets, as the dreambooth flow does, and say which generation stage is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.pipeline import STAGES, find_stage, run_stage_locally, stage_names


@pytest.fixture
def generating_config(tmp_path, tiny_models):
    config = load_run_config(write_demo_project(tmp_path / "demo"))
    training = config.training.model_validate(
        config.training.model_dump()
        | {
            "mask_generation": {"dataset": "subject", "prompt": "toy", "model": str(tiny_models["clipseg"]),
                                "conditioning_dataset": "subject-masks"},
            "class_images": {"prompt": "a photo of a toy", "count": 2, "resolutions": [64],
                             "num_inference_steps": 2, "batch_size": 2, "dataset": "regularisation"},
        }
    )
    return config.model_copy(update={"training": training})


def test_stages_after_generation_need_it_and_then_read_its_outputs(generating_config) -> None:
    with pytest.raises(RuntimeError, match="stage 'masks' has not run.*--stage masks"):
        run_stage_locally(generating_config, "ingest")
    run_stage_locally(generating_config, "masks")
    with pytest.raises(RuntimeError, match="stage 'class_images' has not run.*--stage class_images"):
        run_stage_locally(generating_config, "ingest")
    run_stage_locally(generating_config, "class_images")
    ingested = run_stage_locally(generating_config, "ingest")
    assert ingested["regularisation"]["counts"]["accepted"] == 2  # the 2 generated, not the demo's 6
    assert ingested["subject-masks"]["counts"]["accepted"] == 8


def test_every_stage_reads_only_earlier_stages_and_generation_comes_first() -> None:
    names = stage_names()
    assert len(set(names)) == len(names)
    for position, stage in enumerate(STAGES):
        assert callable(stage.run_locally), stage.name
        assert set(stage.reads) <= set(names[:position]), stage.name
        if stage.sees_generated_datasets:  # the swap-in needs both generation results
            assert {"masks", "class_images"} <= set(names[:position]), stage.name


def test_an_unknown_stage_names_the_stages() -> None:
    assert find_stage("train").reads == ("cache",)
    with pytest.raises(ValueError, match="unknown stage 'trian'; stages: masks, class_images, ingest, cache"):
        find_stage("trian")


def test_preflight_skips_generated_datasets_and_names_a_missing_user_folder(generating_config, tmp_path) -> None:
    import shutil

    from dreamcore.pipeline import preflight
    from dreamcore.storage.faults import RunFault

    for generated in ("subject-masks", "regularisation"):  # what the masks and class_images stages will write
        shutil.rmtree(generating_config.dataset(generated).instance_data_dir)
    preflight(generating_config)
    for generated in ("subject-masks", "regularisation"):  # an empty folder the stage fills is no problem either
        Path(generating_config.dataset(generated).instance_data_dir).mkdir()
    preflight(generating_config)
    shutil.rmtree(generating_config.dataset("subject").instance_data_dir)
    with pytest.raises(RunFault, match="dataset 'subject': key 'instance_data_dir': folder .* does not exist or is not a folder"):
        preflight(generating_config)
    assert not (tmp_path / "demo" / "artifacts").exists()  # preflight creates nothing


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's; elsewhere ru_maxrss is all there is")
def test_a_stage_process_reports_its_own_peak_rss_not_its_parents() -> None:
    """ru_maxrss carries a parent's high-water mark into a child across fork and exec; peak_rss_mb must not
    (a `dreamcore run` started by a large test runner or worker once reported the parent's size)."""
    import subprocess

    from dreamcore.pipeline.local import peak_rss_mb

    ballast = bytearray(600 * 2**20)  # make this parent large, and touch every page
    for offset in range(0, len(ballast), 4096):
        ballast[offset] = 1
    child = subprocess.run([sys.executable, "-c", "from dreamcore.pipeline.local import peak_rss_mb; "
                            "print(peak_rss_mb())"], check=True, capture_output=True, text=True)

    assert peak_rss_mb() > 600
    assert 0 < float(child.stdout) < 300
    del ballast
