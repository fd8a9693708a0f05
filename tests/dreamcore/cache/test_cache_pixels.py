"""A pixel-space family (DeepFloyd IF: no VAE) caches pixels: the vae_cache stage's rows hold each image resized
and cropped exactly as latents would be, in [-1, 1], its mask at image resolution; the text cache holds T5 states
and their attention mask as IFPipeline.encode_prompt makes them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from dreamcore.cache import conditioning
from dreamcore.cache.encode import PIXEL_SPACE, load_image_encoder, pixels_from_images
from dreamcore.cache.parquet_io import get_tensor
from dreamcore.cache.vae import cache_vae_latents
from dreamcore.data.buckets import apply_plan
from dreamcore.data.images import load_rgb
from tests.dreamcore.cache.test_cache_vae import cached_rows, plan_of


def test_cached_pixels_are_the_image_resized_and_cropped_the_same_way(cache_setup, tiny_models) -> None:
    setup = dataclasses.replace(cache_setup, model=str(tiny_models["deepfloyd"]))
    job = setup.job()
    outcome = cache_vae_latents(setup.store, job)
    assert outcome.encoded == 8 and outcome.result.details["buckets"] == {"128x64": 1, "64x64": 7}
    masks = {Path(p).stem: p for p in setup.demo.mask_paths}
    for path, row in cached_rows(setup, outcome.result).items():
        plan = plan_of(row)
        image = apply_plan(load_rgb((Path(setup.image.instance_data_dir) / path).read_bytes()), plan)
        pixels = get_tensor(row, "latents")
        assert pixels.shape == (3, plan.target_size[1], plan.target_size[0])  # image resolution, 3 channels
        assert torch.equal(pixels, pixels_from_images([image])[0].half())  # cache_dtype fp16
        # Back to 8-bit: exactly the cropped image (fp16 keeps k / 127.5 - 1 within a quarter of a level).
        restored = ((pixels.float() + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(restored, np.asarray(image))
        cropped_mask = conditioning.crop_mask(load_rgb(Path(masks[Path(path).stem]).read_bytes()), plan, path)
        assert np.array_equal(get_tensor(row, "mask").numpy(), np.asarray(cropped_mask))  # the mask at image size


def test_pixel_rows_are_keyed_without_a_vae_and_reused(cache_setup, tiny_models) -> None:
    setup = dataclasses.replace(cache_setup, model=str(tiny_models["deepfloyd"]))
    job = setup.job()
    assert job.vae_fingerprint() == PIXEL_SPACE
    assert load_image_encoder(setup.model) is None  # no VAE loads
    first = cache_vae_latents(setup.store, job)
    assert first.encoded == 8
    assert get_tensor(next(iter(cached_rows(setup, first.result).values())), "latents").dtype == torch.float16
    second = cache_vae_latents(setup.store, job)
    assert (second.result, second.encoded, second.reused) == (first.result, 0, 8)
    # The same images under a latent family are other rows (its VAE's fingerprint is in their keys).
    latent = cache_vae_latents(setup.store, dataclasses.replace(job, model_path=str(tiny_models["sd"])))
    assert latent.encoded == 8


def test_the_cache_stage_batches_pixels_and_ifpipelines_t5_states(tmp_path, tiny_models, write_project, run_stage,
                                                                 capsys) -> None:
    from dreamcore.cache.batches import open_batch_source
    from dreamcore.config import load_run_config
    from dreamcore.models import load_pipeline
    from dreamcore.storage import ArtifactStore, StageResult

    config_file = write_project(tmp_path, "deepfloyd", tiny_models["deepfloyd"])
    config_file.write_text(config_file.read_text().replace('"--tokenizer_max_length": 64, ', ""))
    run_stage(config_file, "ingest", capsys)
    cached = run_stage(config_file, "cache", capsys)
    assert cached["text_cache"]["details"]["family"] == "deepfloyd"
    config = load_run_config(config_file)
    store = ArtifactStore(config.training.resolved_storage_root)
    vae = {"subject": StageResult.model_validate(cached["vae_cache"]["subject"])}
    batch = open_batch_source(store, config, vae, StageResult.model_validate(cached["text_cache"])).next_batch()
    assert batch.latents.shape == (2, 3, 64, 64) and batch.latents.abs().max() <= 1.0  # pixels, no VAE
    assert batch.prompt_embeds.shape == (2, 77, 32) and batch.pooled_prompt_embeds is None

    caption = (Path(config.dataset("subject").instance_data_dir) / batch.paths[0]).with_suffix(".txt").read_text()
    pipe = load_pipeline(tiny_models["deepfloyd"], components={"unet": None})
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(caption.strip(), do_classifier_free_guidance=False, clean_caption=False)
    torch.testing.assert_close(batch.prompt_embeds[0], embeds[0].half().float(), atol=2e-3, rtol=0)
