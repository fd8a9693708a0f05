"""The kohya LoRA layout of the UNet families (SD 1.x/2.x, SDXL, the refiner): lora_unet_... keys with .alpha,
which ComfyUI, AUTOMATIC1111 and kohya's scripts load."""

from __future__ import annotations

from pathlib import Path

from dreamcore.models.families.exports import LoraLayout

KOHYA_LORA_FILE = "lora_kohya.safetensors"


def write_kohya_lora(unet, rank: int, alpha: float, target: Path) -> Path:
    """The trained peft LoRA of `unet` as `target`/lora_kohya.safetensors, with the trained alpha."""
    import torch
    from diffusers.utils import convert_state_dict_to_kohya
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    peft_state = {f"unet.{k}": v for k, v in get_peft_model_state_dict(unet).items()}
    kohya = convert_state_dict_to_kohya(peft_state)
    # diffusers writes alpha = rank; kohya loaders scale by alpha / rank, so write the trained alpha.
    kohya = {k: (torch.tensor(alpha) if k.endswith(".alpha") else v.detach().float().cpu().contiguous())
             for k, v in kohya.items()}
    target.mkdir(parents=True, exist_ok=True)
    save_file(kohya, target / KOHYA_LORA_FILE, metadata={"ss_network_dim": str(rank), "ss_network_alpha": str(alpha)})
    return target


KOHYA_LORA = LoraLayout(write_kohya_lora, "kohya", "ComfyUI / AUTOMATIC1111 / kohya: "
                        "`export/kohya/lora_kohya.safetensors` (lora_unet_... keys with .alpha).")
