"""The train stage key: family-only fields (flow_*, flux_*) count only for the families that read them."""

from __future__ import annotations

from dreamcore.config.options.train import FAMILY_ONLY_FIELDS, FLOW_MATCHING_FIELDS
from dreamcore.train.stage import train_key, training_fields

UPSTREAM = {"latents": "d1", "text": "d2"}
# train_key of make_config() (tiny sd / sdxl) on the commit before the flow-matching fields existed.
SD1_KEY_BEFORE_FLOW_FIELDS = "a6b554a2c5cd38ed5dd3"
SDXL_KEY_BEFORE_FLOW_FIELDS = "e01372719ec367c7fc48"


def test_sd1_and_sdxl_keys_are_those_of_the_base_commit(make_config, tiny_models):
    assert train_key(make_config(), UPSTREAM) == SD1_KEY_BEFORE_FLOW_FIELDS
    sdxl = make_config(pretrained_model_name_or_path=str(tiny_models["sdxl"]), model_family="sdxl")
    assert train_key(sdxl, UPSTREAM) == SDXL_KEY_BEFORE_FLOW_FIELDS
    # a flow/flux setting changes nothing for a DDPM family
    assert train_key(make_config(flow_schedule_shift=1.0, flux_guidance_value=3.5), UPSTREAM) == SD1_KEY_BEFORE_FLOW_FIELDS
    assert not set(FAMILY_ONLY_FIELDS) & set(training_fields(make_config()))


def test_flow_families_key_their_own_fields(make_config, tiny_models):
    sd3 = make_config(pretrained_model_name_or_path=str(tiny_models["sd3"]), model_family="sd3")
    flux = make_config(pretrained_model_name_or_path=str(tiny_models["flux"]), model_family="flux")
    assert set(FLOW_MATCHING_FIELDS) <= set(training_fields(sd3))
    assert "flux_guidance_value" not in training_fields(sd3) and "flux_guidance_value" in training_fields(flux)
    assert train_key(sd3.model_copy(update={"flow_schedule_shift": 1.0}), UPSTREAM) != train_key(sd3, UPSTREAM)
    assert train_key(flux.model_copy(update={"flux_guidance_value": 3.5}), UPSTREAM) != train_key(flux, UPSTREAM)
    assert train_key(sd3.model_copy(update={"flux_guidance_value": 3.5}), UPSTREAM) == train_key(sd3, UPSTREAM)
    assert train_key(sd3, UPSTREAM) != train_key(flux, UPSTREAM)
