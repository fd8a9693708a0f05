"""How Flux.2 calls its transformer, and what its VAE's latents are to training.

Flux.2's pipelines turn the VAE's latents into 2x2 patches (4C channels at half the size), normalise every
patch channel by the VAE's batch-norm running statistics, and hand the transformer one token per patch with
4-D position ids (time, row, column, layer). Training here keeps latents unpatchified [B, C, h, w] (normalised,
so noise, targets and loss masks live on the VAE's grid as for every family) and patchifies around the call.
"""

from __future__ import annotations

from dreamcore.models.families.denoisers import Conditioning


def flux2_latents(vae, pixels):
    """Latents [B, C, h, w] of pixels in [-1, 1] as Flux.2 pipelines see them: the VAE's mode, patchified,
    normalised by the VAE's batch-norm running mean and std (as Flux2Pipeline._encode_vae_image), unpatchified."""
    import torch
    from diffusers import Flux2KleinPipeline as Pipeline

    patches = Pipeline._patchify_latents(vae.encode(pixels).latent_dist.mode().float())
    mean = vae.bn.running_mean.view(1, -1, 1, 1).float()
    std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1).float() + vae.config.batch_norm_eps)
    return Pipeline._unpatchify_latents((patches - mean) / std)


def predict_flux2(transformer, noisy, timesteps, conditioning: Conditioning):
    """Flux.2, called as its pipelines call it: 2x2 patches packed into tokens [B, hw/4, 4C] with their position
    ids, text ids over the caption tokens, timestep / 1000 and, for a guidance-distilled transformer (dev), the
    guidance; the output is scattered back by its ids and unpatchified to [B, C, h, w]."""
    import torch
    from diffusers import Flux2KleinPipeline as Pipeline

    _, _, height, width = noisy.shape
    if height % 2 or width % 2:
        raise ValueError(f"Flux.2 packs latents into 2x2 patches: latent size {height}x{width} must be even "
                         "(image sides a multiple of 16 px)")
    patches = Pipeline._patchify_latents(noisy)
    packed = Pipeline._pack_latents(patches)
    image_ids = Pipeline._prepare_latent_ids(patches).to(noisy.device)
    text_ids = Pipeline._prepare_text_ids(conditioning.prompt_embeds).to(noisy.device)
    guidance = None
    if transformer.config.guidance_embeds:
        if conditioning.guidance is None:
            raise ValueError("this Flux.2 transformer has a guidance embedding (dev) but no guidance was given")
        guidance = conditioning.guidance.to(device=noisy.device, dtype=torch.float32)
    output = transformer(hidden_states=packed, timestep=timesteps / 1000, guidance=guidance,
                         encoder_hidden_states=conditioning.prompt_embeds, txt_ids=text_ids, img_ids=image_ids,
                         return_dict=False)[0]
    tokens = Pipeline._unpack_latents_with_ids(output[:, :packed.shape[1]], image_ids, height // 2, width // 2)
    return Pipeline._unpatchify_latents(tokens)
