"""The train stage key: family-only fields (flow_*, flux_*) count only for the families that read them."""

from __future__ import annotations

from dreamcore.config.options.families import FlowMatchingOptions, trained_family_fields
from dreamcore.train.stage import train_key, training_fields

UPSTREAM = {"latents": "d1", "text": "d2"}
# train_key of make_config() (tiny sd / sdxl) since checkpointing_steps and checkpoints_total_limit left the key
# (issue 15); adding the flow-matching fields after had to leave them unchanged. Issue 26 changed them on purpose:
# the defaults became SimpleTuner's (max_grad_norm 2.0 by value, lora_dropout 0.1, lora_init_type default, lr_power
# 0.8), so a config that leaves those keys unset trains differently and must not reuse an older training.
SD1_KEY_BEFORE_FLOW_FIELDS = "24c03392bdcd5706627c"
SDXL_KEY_BEFORE_FLOW_FIELDS = "6376420a507cf86d6557"


def test_sd1_and_sdxl_keys_are_those_of_the_base_commit(make_config, tiny_models):
    assert train_key(make_config(), UPSTREAM) == SD1_KEY_BEFORE_FLOW_FIELDS
    sdxl = make_config(pretrained_model_name_or_path=str(tiny_models["sdxl"]), model_family="sdxl")
    assert train_key(sdxl, UPSTREAM) == SDXL_KEY_BEFORE_FLOW_FIELDS
    # a flow/flux setting changes nothing for a DDPM family
    assert train_key(make_config(flow_schedule_shift=1.0, flux_guidance_value=3.5), UPSTREAM) == SD1_KEY_BEFORE_FLOW_FIELDS
    assert not set(trained_family_fields()) & set(training_fields(make_config()))


def test_flow_families_key_their_own_fields(make_config, tiny_models):
    sd3 = make_config(pretrained_model_name_or_path=str(tiny_models["sd3"]), model_family="sd3")
    flux = make_config(pretrained_model_name_or_path=str(tiny_models["flux"]), model_family="flux")
    assert set(FlowMatchingOptions.model_fields) <= set(training_fields(sd3))
    assert "flux_guidance_value" not in training_fields(sd3) and "flux_guidance_value" in training_fields(flux)
    assert train_key(sd3.model_copy(update={"flow_schedule_shift": 1.0}), UPSTREAM) != train_key(sd3, UPSTREAM)
    assert train_key(flux.model_copy(update={"flux_guidance_value": 3.5}), UPSTREAM) != train_key(flux, UPSTREAM)
    assert train_key(sd3.model_copy(update={"flux_guidance_value": 3.5}), UPSTREAM) == train_key(sd3, UPSTREAM)
    assert train_key(sd3, UPSTREAM) != train_key(flux, UPSTREAM)


def _changed(value):
    """Another valid value for a field: what a user would edit."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 7
    return (value or "x") + "-changed"


def test_checkpoint_validation_and_tracking_settings_do_not_rekey(make_config):
    """Only what can change the weights is keyed: checkpoint cadence and retention, validation, previews, webhooks
    and tracking settings (whichever options group holds them) are not."""
    from dreamcore.config import TrainingConfig
    from dreamcore.config.options.train import CHECKPOINT_FIELDS, OBSERVER_PREFIXES

    config = make_config()
    names = [n for n in TrainingConfig.model_fields if n in CHECKPOINT_FIELDS or n.startswith(OBSERVER_PREFIXES)]
    assert {"checkpointing_steps", "checkpoints_total_limit", "validation_steps", "validation_preview",
            "webhook_config"} <= set(names)
    changes = {"checkpointing_steps": 3, "checkpoints_total_limit": 2, "validation_steps": 5, "validation_prompt": "x",
               "validation_preview": True, "webhook_config": {"webhook_type": "raw", "callback_url": "http://x"},
               "validation_resolution": 64, "num_validation_images": 3}
    for name in names:
        value = changes.get(name, _changed(getattr(config, name)))
        try:
            other = TrainingConfig.model_validate(config.model_dump() | {name: value})
        except ValueError:  # a field whose values this generic edit does not fit: the table above covers it
            assert name not in changes
            continue
        assert train_key(other, UPSTREAM) == train_key(config, UPSTREAM), name


def test_held_out_eval_images_rekey_training(make_config):
    config = make_config()
    held_out = config.model_copy(update={"eval_dataset_fraction": 0.25})
    assert train_key(held_out, UPSTREAM) != train_key(config, UPSTREAM)


def test_dataset_repeats_probability_and_caption_dropout_rekey_training(make_config):
    """A dataset's repeats, probability and caption dropout change which batches train; no cache digest holds
    them, so the train key's upstream does (only when set: runs that use none keep their keys)."""
    from dreamcore.config import DatasetSpec, RunConfig
    from dreamcore.pipeline import CacheResults, cache_digests
    from dreamcore.storage import StageResult

    def digests(**dataset):
        spec = DatasetSpec(id="subject", instance_data_dir="/data", **dataset)
        config = RunConfig(training=make_config(), datasets=[spec])
        result = StageResult(stage="vae_cache", key="k", output_uri="/out", digest="d1")
        caches = CacheResults(vae_cache={"subject": result}, text_cache=result.model_copy(update={"digest": "d2"}))
        return cache_digests(caches, config)

    plain = digests()
    assert plain == {"vae_cache/subject": "d1", "text_cache": "d2"}
    edited = [digests(repeats=3), digests(probability=0.5), digests(caption_dropout_probability=0.1)]
    assert all(train_key(make_config(), d) != train_key(make_config(), plain) for d in edited)
    assert len({train_key(make_config(), d) for d in edited}) == 3
