"""The FLOP ceiling of the caching speed-up, counted on meta-device modules."""

import pytest


def test_tiny_model_flops_order_the_kinds_of_step():
    import caching_ceiling

    flops = caching_ceiling.model_flops(*caching_ceiling.tiny_components(), resolution=64)

    assert 0 < flops["forward"] < flops["adapter_step"] < flops["full_step"]
    assert flops["vae_encode"] > 0 and flops["text_encode"] > 0


def test_ceiling_is_step_plus_encoding_over_step():
    import caching_ceiling

    flops = {"forward": 1.0, "adapter_step": 2.0, "full_step": 3.0, "vae_encode": 0.75, "text_encode": 0.25}

    assert caching_ceiling.ceilings(flops) == pytest.approx(
        {"adapter": 1.5, "full": 4 / 3, "adapter + checkpointing": 4 / 3, "full + checkpointing": 1.25})


def test_sd15_architecture_has_the_published_sizes():
    from reference_models import meta_components

    unet, vae, (text,) = meta_components("sd15")

    assert sum(p.numel() for p in unet.parameters()) == pytest.approx(859.5e6, rel=0.01)
    assert sum(p.numel() for p in vae.parameters()) == pytest.approx(83.7e6, rel=0.01)
    assert sum(p.numel() for p in text.parameters()) == pytest.approx(123.1e6, rel=0.01)
