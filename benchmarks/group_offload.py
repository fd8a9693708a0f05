"""Benchmark: memory of training with the frozen base group-offloaded to disk (enable_group_offload) against
without, on CPU, through the real Trainer on the caches.

The model is bigger than the tests' tiny one so the difference shows: the tiny SD folder (its VAE, text encoder,
tokenizer) with its UNet replaced by a random-weight UNet of SD 1.5's layout at reduced widths (--channels,
default 128 256 512 512, two layers per block, cross-attention over the tiny text encoder's width). Each variant
trains in its own process; the figure that matters is the peak resident memory *while training* (the process's
VmHWM reset after setup through /proc/self/clear_refs, read after the last step): on CPU the model is read
whole before offloading starts, so the process's all-time peak includes that load (reported beside it; on a GPU
the load stays on the CPU and the device holds only the groups in use). The losses of every variant are
printed: they must be equal.

    .venv/bin/python benchmarks/group_offload.py                 # 3 variants x 4 steps: over 25 minutes under load
    .venv/bin/python benchmarks/group_offload.py --steps 3 --no-write
    .venv/bin/python benchmarks/group_offload.py --steps 2 --variants "no offload" "block_level to disk"
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).parent / "results" / "group_offload.md"
VARIANTS = {
    "no offload": {},
    "block_level to disk": {"--enable_group_offload": True, "--group_offload_type": "block_level"},
    "leaf_level to disk": {"--enable_group_offload": True, "--group_offload_type": "leaf_level"},
}


def write_model(models: Path, channels: list[int]) -> Path:
    """The tiny SD folder with a bigger random-weight UNet (reused when present)."""
    import torch
    from diffusers import UNet2DConditionModel

    from dreamcore.models import write_tiny_models

    folder = models / f"sd-unet-{'-'.join(map(str, channels))}"
    if (folder / "unet" / "config.json").is_file():
        return folder
    tiny = write_tiny_models(models / "tiny")["sd"]
    shutil.copytree(tiny, folder, dirs_exist_ok=True)
    shutil.rmtree(folder / "unet")
    tiny_unet = json.loads((tiny / "unet" / "config.json").read_text())
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=tiny_unet["sample_size"], in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=tuple(channels), cross_attention_dim=tiny_unet["cross_attention_dim"],
        down_block_types=("CrossAttnDownBlock2D",) * (len(channels) - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (len(channels) - 1), attention_head_dim=8)
    unet.save_pretrained(folder / "unet")
    return folder


def run_one(config_path: Path, variant: str) -> dict:
    """Train one variant in this process; memory after setup and the peak while training."""
    import torch

    from dreamcore.config import load_run_config
    from dreamcore.pipeline.local import peak_rss_mb
    from dreamcore.storage import ArtifactStore
    from dreamcore.train.trainer import Trainer, make_accelerator
    from train_speed import cached_source

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    config = load_run_config(config_path)
    training = config.training
    store = ArtifactStore(training.resolved_storage_root)
    folder = f"benchmark/offload-{os.getpid()}"
    trainer = Trainer(training, store, folder, cached_source(config, store), make_accelerator(training),
                      show_progress=False).setup()
    setup_peak = peak_rss_mb()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM: the peak from here on is the training's
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    row = {"variant": variant, "training_peak_mb": peak_rss_mb(), "setup_peak_mb": setup_peak,
           "s_per_step": seconds / training.max_train_steps, "losses": [e["loss"] for e in trainer.history],
           "params_m": sum(p.numel() for p in trainer.base.unet.parameters()) / 1e6}
    store.remove(folder)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, nargs="+", default=[128, 256, 512, 512])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--models-dir", type=Path, default=Path(".dreamcore/benchmark-models"))
    parser.add_argument("--build-caches", type=Path, metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--one", nargs=2, metavar=("CONFIG", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="the variants to run (default: all)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.build_caches:
        from train_speed import build_caches

        build_caches(args.build_caches)
        return
    if args.one:
        print(json.dumps(run_one(Path(args.one[0]), args.one[1])))
        return
    from train_speed import write_project

    work = Path(tempfile.mkdtemp(prefix="dreamcore-group-offload-"))
    model = write_model(args.models_dir.resolve(), args.channels)
    config = write_project(work, model, "sd1", 64, 2, args.steps)["lora"]
    subprocess.run([sys.executable, __file__, "--build-caches", str(config)], check=True)  # its own process
    rows = []
    for variant in args.variants:
        options = VARIANTS[variant]
        document = json.loads(config.read_text()) | options
        if options:
            document["--group_offload_to_disk_path"] = str(work / "offload")
        path = work / f"config-{len(rows)}.json"
        path.write_text(json.dumps(document))
        output = subprocess.run([sys.executable, __file__, "--one", str(path), variant], check=True,
                                capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    shutil.rmtree(work, ignore_errors=True)
    table = _table(rows, args)
    print(table)
    if not args.no_write:
        RESULTS.write_text(table)


def _table(rows: list[dict], args) -> str:
    load = os.getloadavg()
    lines = [
        "# Group offload to disk while training: memory (CPU)", "",
        f"`.venv/bin/python benchmarks/group_offload.py --channels {' '.join(map(str, args.channels))} "
        f"--steps {args.steps}`, {time.strftime('%Y-%m-%d', time.gmtime())}: the tiny SD with a "
        f"{rows[0]['params_m']:.0f} M-parameter UNet (SD 1.5's layout, widths {args.channels}), 64 px, batch 2, "
        f"LoRA rank 4, fp32, CPU ({os.cpu_count()} cores), each variant in its own process. Load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (other sessions' work): memory figures do not depend "
        "on it, the step times do.", "",
        "| variant | peak RSS while training MB | peak RSS through setup MB | s/step | losses |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        losses = ", ".join(f"{loss:.6f}" for loss in row["losses"])
        lines.append(f"| {row['variant']} | {row['training_peak_mb']:.0f} | {row['setup_peak_mb']:.0f} | "
                     f"{row['s_per_step']:.2f} | {losses} |")
    equal = all(row["losses"] == rows[0]["losses"] for row in rows)
    lines += ["", f"Losses equal across variants: {equal}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
