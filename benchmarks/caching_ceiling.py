"""How much faster can training get by caching latents and text embeddings? The FLOP ceiling.

Caching removes the VAE encoder and the text encoders from every step, nothing else, so at best a
step gets faster by (training step + encoding) / training step. This counts both in FLOPs
(torch.utils.flop_counter, every module on the meta device: no weights, no memory, seconds) for
one image at each model's native resolution:

- LoRA / LyCORIS step: UNet forward + backward to the activations (the base weights are frozen;
  the adapters' own FLOPs are negligible); full step: backward to every weight as well;
- gradient checkpointing adds one more UNet forward to either;
- encoding: the VAE encoder (with the latent sample) plus every text encoder.

Optimiser, quantisation and data-loading overheads are left out: they only make a step longer and
the ceiling lower (a quantised base dequantises its weights, so its ceiling is the LoRA one or less).
Results go to benchmarks/results/caching_ceiling.md.

    .venv/bin/python benchmarks/caching_ceiling.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).parent / "results" / "caching_ceiling.md"


def count_gflops(run) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops() / 1e9


def tiny_components():
    """The tiny test SD's modules (dreamcore.models.tiny), rebuilt on the meta device from its folder's configs."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from dreamcore.models.tiny import write_tiny_sd

    with tempfile.TemporaryDirectory(prefix="dreamcore-ceiling-") as root:  # only the configs are read
        folder = write_tiny_sd(Path(root) / "sd")
        with torch.device("meta"):
            unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
            vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
            text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
    return unet, vae, [text]


def model_flops(unet, vae, encoders, resolution: int) -> dict[str, float]:
    """GFLOPs per image: UNet forward, LoRA step, full step, encoding."""
    import torch

    device = torch.device("meta")
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    latent = resolution // factor
    noisy = torch.randn(1, unet.config.in_channels, latent, latent, device=device)
    timestep = torch.tensor([500], device=device)
    hidden = torch.randn(1, 77, unet.config.cross_attention_dim, device=device)
    added = None
    if unet.config.addition_embed_type == "text_time":
        pooled = encoders[-1].config.projection_dim
        time_ids = (unet.config.projection_class_embeddings_input_dim - pooled) // unet.config.addition_time_embed_dim
        added = {"text_embeds": torch.randn(1, pooled, device=device), "time_ids": torch.randn(1, time_ids, device=device)}

    def forward(x):
        return unet(x, timestep, encoder_hidden_states=hidden, added_cond_kwargs=added).sample

    unet.requires_grad_(False)
    flops = {"forward": count_gflops(lambda: forward(noisy))}
    flops["adapter_step"] = count_gflops(lambda: forward(noisy.clone().requires_grad_(True)).sum().backward())
    unet.requires_grad_(True)
    flops["full_step"] = count_gflops(lambda: forward(noisy).sum().backward())
    pixels = torch.randn(1, 3, resolution, resolution, device=device)
    tokens = torch.zeros(1, 77, dtype=torch.long, device=device)
    with torch.no_grad():
        flops["vae_encode"] = count_gflops(lambda: vae.encode(pixels).latent_dist.sample())
        flops["text_encode"] = sum(count_gflops(lambda e=e: e(tokens)) for e in encoders)
    return flops


def ceilings(flops: dict[str, float]) -> dict[str, float]:
    """(step + encoding) / step for each kind of step."""
    encode = flops["vae_encode"] + flops["text_encode"]
    steps = {
        "adapter": flops["adapter_step"],
        "full": flops["full_step"],
        "adapter + checkpointing": flops["adapter_step"] + flops["forward"],
        "full + checkpointing": flops["full_step"] + flops["forward"],
    }
    return {kind: (step + encode) / step for kind, step in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print the table, do not write the results file")
    args = parser.parse_args()
    from reference_models import SD15, SDXL, meta_components

    models = [("tiny SD (tests, demo)", tiny_components, 64), ("SD 1.5", lambda: meta_components("sd15"),
               SD15["resolution"]), ("SDXL base", lambda: meta_components("sdxl"), SDXL["resolution"])]
    lines = [
        "# Caching ceiling: the most a training step can gain from cached latents and text embeddings",
        "",
        f"`.venv/bin/python benchmarks/caching_ceiling.py`, {time.strftime('%Y-%m-%d')}: FLOPs counted with "
        "torch.utils.flop_counter on the meta device, one image at the model's native resolution. "
        "Ceiling = (step + encoding) / step; optimiser and data loading are left out (they lower it).",
        "",
        "| model | px | UNet fwd GF | adapter step GF | full step GF | VAE encode GF | text encode GF "
        "| ceiling adapter | ceiling full | adapter + grad ckpt | full + grad ckpt |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, build, resolution in models:
        flops = model_flops(*build(), resolution)
        ceiling = ceilings(flops)
        lines.append(f"| {name} | {resolution} | {flops['forward']:.1f} | {flops['adapter_step']:.1f} | "
                     f"{flops['full_step']:.1f} | {flops['vae_encode']:.1f} | {flops['text_encode']:.1f} | "
                     f"{ceiling['adapter']:.2f}x | {ceiling['full']:.2f}x | "
                     f"{ceiling['adapter + checkpointing']:.2f}x | {ceiling['full + checkpointing']:.2f}x |")
        print(lines[-1], flush=True)
    lines += ["", "Adapter = LoRA or LyCORIS (and a quantised base with either): the base weights get no "
              "gradient. SD 1.5 and SDXL are built from their published configs (benchmarks/reference_models.py).",
              ""]
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(table)


if __name__ == "__main__":
    main()
