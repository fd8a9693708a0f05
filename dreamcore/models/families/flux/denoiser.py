"""How Flux calls its transformer: latents packed into 2x2 patches, position ids, timestep / 1000, guidance."""

from __future__ import annotations

from dreamcore.models.families.denoisers import Conditioning


def predict_flux(transformer, noisy, timesteps, conditioning: Conditioning, extra_tokens=None):
    """Flux, called as FluxPipeline calls it: latents packed into 2x2 patches [B, hw/4, 4C] with their
    position ids, text ids of zeros, timestep / 1000 and (guidance-distilled models) the guidance;
    the output is unpacked back to [B, C, h, w]. With an attention mask (flux_attention_masked_training) every
    token attends only to the real T5 tokens and the image tokens (SimpleTuner's mask: text mask, then ones).
    `extra_tokens`: (tokens [B, S', 4C], ids [S', 3]) appended after the image tokens (an edit model's references,
    flux/kontext.py); the output keeps the image tokens only."""
    import torch
    from diffusers import FluxPipeline

    size, channels, height, width = noisy.shape
    if height % 2 or width % 2:
        raise ValueError(f"Flux packs latents into 2x2 patches: latent size {height}x{width} must be even "
                         "(image sides a multiple of 16 px)")
    packed = FluxPipeline._pack_latents(noisy, size, channels, height, width)
    image_ids = FluxPipeline._prepare_latent_image_ids(size, height // 2, width // 2, noisy.device, noisy.dtype)
    target_tokens = packed.shape[1]
    if extra_tokens is not None:
        tokens, ids = extra_tokens
        packed = torch.cat([packed, tokens.to(device=noisy.device, dtype=packed.dtype)], dim=1)
        image_ids = torch.cat([image_ids, ids.to(device=noisy.device, dtype=image_ids.dtype)], dim=0)
    text_ids = torch.zeros(conditioning.prompt_embeds.shape[1], 3, device=noisy.device, dtype=noisy.dtype)
    guidance = None
    if transformer.config.guidance_embeds:
        if conditioning.guidance is None:
            raise ValueError("this Flux transformer has a guidance embedding (a dev model) but no guidance was given")
        guidance = conditioning.guidance.to(device=noisy.device, dtype=torch.float32)
    attention = None
    if conditioning.attention_mask is not None:
        # Keys of the joint sequence [text, image]: the processor expands a [B, S] mask to every head and query.
        image_keys = torch.ones(size, packed.shape[1], dtype=torch.bool, device=noisy.device)
        attention = {"attention_mask": torch.cat([conditioning.attention_mask.bool().to(noisy.device), image_keys],
                                                 dim=1)}
    output = transformer(hidden_states=packed, timestep=timesteps / 1000, guidance=guidance,
                         pooled_projections=conditioning.pooled, encoder_hidden_states=conditioning.prompt_embeds,
                         txt_ids=text_ids, img_ids=image_ids, joint_attention_kwargs=attention, return_dict=False)[0]
    return unpack_flux_latents(output[:, :target_tokens], height, width)


def unpack_flux_latents(packed, height: int, width: int):
    """Flux tokens [B, h/2 x w/2, 4C] back to latents [B, C, h, w] (FluxPipeline._unpack_latents at scale 1)."""
    from diffusers import FluxPipeline

    return FluxPipeline._unpack_latents(packed, height, width, 1)
