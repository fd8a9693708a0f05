"""SD3 and Flux through `dreamcore run CONFIG --stage cache`: family-shaped text rows (T5 states, pooled CLIP,
Flux's T5 mask), 16-channel latents, batches that carry them, and a second run that reuses everything."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dreamcore.cache.batches import open_batch_source
from dreamcore.cache.stages import committed_ingests, text_cache_job
from dreamcore.cache.text import TextCacheJob, cache_text_embeds
from dreamcore.cache.text_encoders import load_text_encoders, text_encoder_precisions
from dreamcore.config import load_run_config
from dreamcore.models import detect_family, family_named, load_pipeline, model_fingerprint
from dreamcore.models.families.captions import CaptionSettings
from dreamcore.storage import ArtifactStore, StageResult, digest_of

T5_TOKENS = 64  # the character-level tiny T5 spells the demo captions in under 64 tokens
CLIP_TOKENS = 77


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_cache_stage_stores_what_the_family_needs_and_a_second_run_reuses_it(tmp_path, tiny_models, capsys, kind,
                                                                              write_project, run_stage):
    config_file = write_project(tmp_path, kind, tiny_models[kind])
    run_stage(config_file, "ingest", capsys)
    first = run_stage(config_file, "cache", capsys)
    assert first["text_cache"]["encoded"] == 4 and first["vae_cache"]["subject"]["encoded"] == 4

    config = load_run_config(config_file)
    store = ArtifactStore(config.training.resolved_storage_root)
    vae = {"subject": StageResult.model_validate(first["vae_cache"]["subject"])}
    text = StageResult.model_validate(first["text_cache"])
    batch = open_batch_source(store, config, vae, text).next_batch()
    flux = kind == "flux"
    assert batch.latents.shape == (2, 16, 32, 32)  # the tiny 16-channel VAE halves each edge
    assert batch.prompt_embeds.shape == (2, T5_TOKENS if flux else CLIP_TOKENS + T5_TOKENS, 32)
    assert batch.pooled_prompt_embeds.shape == (2, 32)
    assert batch.time_ids is None

    # The rows equal the stock pipeline's encode_prompt (Flux: and the T5 tokenizer's mask).
    image = Path(config.dataset("subject").instance_data_dir) / batch.paths[0]
    caption = image.with_suffix(".txt").read_text()
    pipe = load_pipeline(tiny_models[kind], components={"transformer": None, "vae": None})
    with torch.no_grad():
        if flux:
            embeds, pooled, _ = pipe.encode_prompt(caption.strip(), None, max_sequence_length=T5_TOKENS)
        else:
            embeds, _, pooled, _ = pipe.encode_prompt(caption.strip(), None, None, do_classifier_free_guidance=False,
                                                      max_sequence_length=T5_TOKENS)
    torch.testing.assert_close(batch.prompt_embeds[0], embeds[0].half().float(), atol=2e-3, rtol=0)
    torch.testing.assert_close(batch.pooled_prompt_embeds[0], pooled[0].half().float(), atol=2e-3, rtol=0)
    if flux:
        tokens = pipe.tokenizer_2(caption.strip()).input_ids
        assert batch.prompt_attention_mask.dtype == torch.bool
        assert batch.prompt_attention_mask[0].tolist() == [True] * len(tokens) + [False] * (T5_TOKENS - len(tokens))
    else:
        assert batch.prompt_attention_mask is None  # SD3's transformer attends to every token

    second = run_stage(config_file, "cache", capsys)
    assert second["text_cache"]["key"] == first["text_cache"]["key"] and second["text_cache"]["encoded"] == 0
    assert second["vae_cache"]["subject"]["encoded"] == 0
    assert second["vae_cache"]["subject"]["key"] == first["vae_cache"]["subject"]["key"]


def test_t5_settings_key_the_rows_and_zero_padding_clears_padded_states(tmp_path, tiny_models, capsys, write_project,
                                                                        run_stage):
    config_file = write_project(tmp_path, "flux", tiny_models["flux"], **{"--t5_padding": "zero"})
    run_stage(config_file, "ingest", capsys)
    config = load_run_config(config_file)
    store = ArtifactStore(config.training.resolved_storage_root)
    zeroed = text_cache_job(config, committed_ingests(config, store))
    unmodified = TextCacheJob.from_config(config.model_copy(update={"training": config.training.model_copy(
        update={"t5_padding": "unmodified"})}), zeroed.ingests)
    longer = TextCacheJob.from_config(config.model_copy(update={"training": config.training.model_copy(
        update={"tokenizer_max_length": T5_TOKENS + 1})}), zeroed.ingests)
    assert len({job.encoder_fingerprint() for job in (zeroed, unmodified, longer)}) == 3

    family = family_named("flux")
    pipe = load_text_encoders(zeroed.model_path, family)
    captions = ["a photo of sks toy"]
    plain = family.encode_captions(pipe, captions, unmodified.captions)
    zero = family.encode_captions(pipe, captions, zeroed.captions)
    padding = ~plain.attention_mask[0].bool()
    assert padding.any() and plain.prompt_embeds[0, padding].abs().sum() > 0
    assert zero.prompt_embeds[0, padding].abs().sum() == 0
    torch.testing.assert_close(zero.prompt_embeds[0, ~padding], plain.prompt_embeds[0, ~padding])


@pytest.mark.parametrize(("kind", "key", "component"), [("sd3", "text_encoder_3_precision", "text_encoder_3"),
                                                        ("flux", "text_encoder_2_precision", "text_encoder_2")])
def test_int8_quanto_t5_encodes_the_same_shapes_under_its_own_key(tmp_path, tiny_models, capsys, kind, key, component,
                                                                   write_project, run_stage):
    config_file = write_project(tmp_path, kind, tiny_models[kind], **{f"--{key}": "int8-quanto"})
    run_stage(config_file, "ingest", capsys)
    config = load_run_config(config_file)
    store = ArtifactStore(config.training.resolved_storage_root)
    quantised = text_cache_job(config, committed_ingests(config, store))
    assert quantised.precisions == {component: "int8-quanto"}
    full = TextCacheJob.from_config(config.model_copy(update={"training": config.training.model_copy(
        update={key: "no_change"})}), quantised.ingests)
    assert quantised.encoder_fingerprint() != full.encoder_fingerprint()

    family = detect_family(quantised.model_path)
    pipe = load_text_encoders(quantised.model_path, family, quantised.precisions)
    assert any(type(m).__name__ == "QLinear" for m in getattr(pipe, component).modules())
    captions = ["a photo of sks toy", "a dog"]
    int8 = family.encode_captions(pipe, captions, quantised.captions)
    exact = family.encode_captions(load_text_encoders(full.model_path, family), captions, full.captions)
    assert int8.prompt_embeds.shape == exact.prompt_embeds.shape and int8.pooled.shape == exact.pooled.shape
    assert torch.isfinite(int8.prompt_embeds).all()
    torch.testing.assert_close(int8.prompt_embeds, exact.prompt_embeds, atol=0.2, rtol=0)  # close, not equal
    outcome = cache_text_embeds(store, quantised)
    assert outcome.encoded == 4


def test_unsupported_text_encoder_precision_names_the_key(tiny_models) -> None:
    from types import SimpleNamespace

    training = SimpleNamespace(text_encoder_1_precision="no_change", text_encoder_2_precision="no_change",
                               text_encoder_3_precision="nf4-bnb")
    with pytest.raises(ValueError, match="text_encoder_3_precision 'nf4-bnb'"):
        text_encoder_precisions(training, family_named("sd3"))
    assert text_encoder_precisions(training, family_named("flux")) == {}  # Flux has no third encoder


@pytest.mark.parametrize("kind", ["sd", "sdxl"])
def test_sd_text_cache_keys_hash_what_they_hashed_before_t5_settings(tmp_path, tiny_models, kind) -> None:
    settings = CaptionSettings(max_sequence_length=99, t5_padding="zero")  # no T5: no effect, not in the key
    job = TextCacheJob({}, str(tiny_models[kind]), str(tmp_path), captions=settings)
    family = job.family()
    parts = {name: model_fingerprint(job.model_path, name) for name in family.text_components}
    assert job.encoder_fingerprint() == digest_of({"family": family.name, "parts": parts})[:16]


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_a_cached_16_channel_latent_decodes_to_the_vaes_own_round_trip(cache_setup, tiny_models, kind) -> None:
    """Shift and scale are applied exactly once: (latents / scaling + shift) decodes like a direct encode/decode."""
    import dataclasses

    import dreamcore.cache.encode as encode_module
    from dreamcore.cache.parquet_io import get_tensor
    from dreamcore.cache.shards import ShardedCache
    from dreamcore.cache.vae import cache_vae_latents, read_index
    from dreamcore.data.buckets import apply_plan, plan_crop
    from dreamcore.data.images import load_rgb
    from dreamcore.data.ingest import read_manifest

    setup = dataclasses.replace(cache_setup, model=str(tiny_models[kind]))
    job = setup.job(masks=False)
    result = cache_vae_latents(setup.store, job).result
    vae = encode_module.load_vae(setup.model, "cpu")
    scaling, shift = vae.config.scaling_factor, vae.config.shift_factor
    assert shift  # both families' VAEs have a shift
    manifest = {r["path"]: r for r in read_manifest(setup.store, job.ingest)}
    entry = read_index(setup.store, result)[0]
    row = {r["key"]: r for r in ShardedCache(result.details["cache_uri"]).read_shard(entry["shard"])}[entry["key"]]
    record = manifest[entry["path"]]
    plan = plan_crop(record["width"], record["height"], job.buckets, record["digest"])
    image = apply_plan(load_rgb((Path(setup.image.instance_data_dir) / entry["path"]).read_bytes()), plan)
    pixels = encode_module.pixels_from_images([image])
    cached = get_tensor(row, "latents").float()[None]
    assert cached.shape[1] == 16
    with torch.no_grad():
        direct = vae.decode(vae.encode(pixels).latent_dist.mode()).sample
        from_cache = vae.decode(cached / scaling + shift).sample
        shifted_twice = vae.decode(cached / scaling + 2 * shift).sample
    round_trip = (direct - pixels).abs().mean()
    assert (from_cache - pixels).abs().mean() <= round_trip * 1.01 + 1e-3
    drift = (from_cache - direct).abs().max()
    assert drift < 0.02  # fp16 storage of the latents is all that separates them
    assert (shifted_twice - direct).abs().max() > 5 * drift  # the check would see a shift applied twice
