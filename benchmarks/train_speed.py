"""Benchmark: training steps/s from the caches against re-encoding every step, and peak memory.

Same tiny SD model (64 px images, 32x32x4 latents), same 4 demo images and captions, batch 2, the
same dreamcore Trainer step (noise, UNet forward/backward, AdamW). The only difference:

- cached:   batches come from latents and text embeddings encoded once (what the cache stages give);
- uncached: every batch decodes its images from disk, resizes them, runs the VAE encoder (sampling
            the latent distribution) and the text encoder, as diffusers' DreamBooth example does
            without caching; the VAE and text encoder stay loaded next to the UNet.

Each (adapter, loop) run is its own process so peak memory (max RSS on CPU, max allocated on
CUDA) belongs to that run alone. Speed is 1 / the median step time (robust to other processes
briefly taking the cores), and the cached and uncached runs alternate over --repeats rounds; the
table shows the median over rounds. Results go to benchmarks/results/train_speed.md.

    .venv/bin/python benchmarks/train_speed.py                 # all variants, ~2 minutes on 2 cores
    .venv/bin/python benchmarks/train_speed.py --steps 20 --variants lora full
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

VARIANTS = {
    "lora": {},
    "lycoris": {"lora_type": "lycoris"},
    "full": {"model_type": "full"},
    "int8-quanto+lora": {"base_model_precision": "int8-quanto"},
}
LYCORIS_SPEC = {"algo": "lokr", "multiplier": 1.0, "linear_dim": 10000, "linear_alpha": 1, "factor": 4,
                "apply_preset": {"target_module": ["Attention", "FeedForward"]}}
RESULTS = Path(__file__).parent / "results" / "train_speed.md"


class EncodingBatchSource:
    """Batches made the uncached way: decode, resize, VAE-encode and text-encode on every step."""

    def __init__(self, pipe, image_paths, prompts, batch_size: int, seed: int = 0) -> None:
        import torch

        self.pipe, self.image_paths, self.prompts = pipe, list(image_paths), list(prompts)
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.position = 0
        self.encode_seconds: list[float] = []  # per batch: what the caches save

    def __iter__(self):
        import numpy as np
        import torch
        from PIL import Image

        from dreamcore.train.batch import TrainingBatch
        from dreamcore.train.memory import _square

        while True:
            index = [(self.position + i) % len(self.image_paths) for i in range(self.batch_size)]
            self.position += self.batch_size
            started = time.perf_counter()
            with torch.no_grad():
                pixels = [_square(Image.open(self.image_paths[i]).convert("RGB"), 64)[0] for i in index]
                arrays = np.stack([np.asarray(p, dtype=np.float32) for p in pixels])
                tensor = torch.from_numpy(arrays).permute(0, 3, 1, 2) / 127.5 - 1.0
                vae = self.pipe.vae
                latents = vae.encode(tensor).latent_dist.sample(self.generator) * vae.config.scaling_factor
                embeds = self.pipe.encode_prompt([self.prompts[i] for i in index], "cpu", 1, False)[0]
            self.encode_seconds.append(time.perf_counter() - started)
            yield TrainingBatch(latents=latents, prompt_embeds=embeds)

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, state) -> None:
        self.position = state["position"]


def run_one(variant: str, loop: str, steps: int, warmup: int, threads: int) -> dict:
    """Train `warmup + steps` steps of one variant with one loop; steps/s over the timed steps."""
    import torch

    from dreamcore.config import TrainingConfig
    from dreamcore.data.demo import write_demo_dataset
    from dreamcore.models import write_tiny_models
    from dreamcore.models.loading import load_pipeline
    from dreamcore.storage import ArtifactStore
    from dreamcore.train.memory import InMemoryBatchSource, encode_samples
    from dreamcore.train.trainer import Trainer, make_accelerator

    torch.set_num_threads(threads)
    work = Path(tempfile.mkdtemp(prefix="dreamcore-train-speed-"))
    model = write_tiny_models(work / "models")["sd"]
    demo = write_demo_dataset(work / "demo", n_images=4, include_masks=False)
    options = dict(VARIANTS[variant])
    if options.get("lora_type") == "lycoris":
        (work / "lycoris.json").write_text(json.dumps(LYCORIS_SPEC))
        options["lycoris_config"] = str(work / "lycoris.json")
    config = TrainingConfig(pretrained_model_name_or_path=str(model), model_family="sd1x", mixed_precision="bf16",
                            max_train_steps=warmup + steps, checkpointing_steps=10_000, train_batch_size=2,
                            lora_rank=4, optimizer="adamw", **options)
    pipe = load_pipeline(model)
    if loop == "cached":
        from PIL import Image

        samples = encode_samples(pipe, [Image.open(p) for p in demo.image_paths], list(demo.captions))
        source = InMemoryBatchSource(samples, 2)
        del pipe  # the cached loop needs no VAE or text encoder
    else:
        source = EncodingBatchSource(pipe, demo.image_paths, demo.captions, 2)
    accelerator = make_accelerator(config)
    trainer = Trainer(config, ArtifactStore(str(work / "artifacts")), "train/bench", source, accelerator,
                      show_progress=False).setup()
    stamps = {}
    trainer.on_step = lambda entry: stamps.__setitem__(entry["step"], time.perf_counter())
    trainer.train()
    durations = sorted(stamps[s + 1] - stamps[s] for s in range(warmup, warmup + steps))
    encode = getattr(source, "encode_seconds", [0.0])[warmup:] or [0.0]
    return {"variant": variant, "loop": loop, "steps_per_s": 1.0 / statistics.median(durations),
            "encode_ms": 1000 * statistics.median(encode),
            "mean_steps_per_s": steps / (stamps[warmup + steps] - stamps[warmup]), "peak_mb": _peak_mb(),
            "device": str(accelerator.device), "threads": threads}


def _peak_mb() -> float:
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds of every run")
    parser.add_argument("--one", nargs=2, metavar=("VARIANT", "LOOP"), help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print the table, do not write the results file")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], args.steps, args.warmup, args.threads)))
        return
    rows = []
    for _ in range(args.repeats):
        for variant in args.variants:
            for loop in ("cached", "uncached"):
                command = [sys.executable, __file__, "--one", variant, loop, "--steps", str(args.steps),
                           "--warmup", str(args.warmup), "--threads", str(args.threads)]
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                rows.append(json.loads(output.strip().splitlines()[-1]))
                print(rows[-1], flush=True)
    table = _table(rows, args)
    print(table)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(table)


def _table(rows: list[dict], args) -> str:
    by = {}
    for key in {(r["variant"], r["loop"]) for r in rows}:
        runs = [r for r in rows if (r["variant"], r["loop"]) == key]
        by[key] = {"steps_per_s": statistics.median(r["steps_per_s"] for r in runs),
                   "peak_mb": statistics.median(r["peak_mb"] for r in runs),
                   "encode_ms": statistics.median(r["encode_ms"] for r in runs)}
    lines = [
        "# Training speed: cached batches vs encoding every step",
        "",
        f"`.venv/bin/python benchmarks/train_speed.py --steps {args.steps} --threads {args.threads} "
        f"--repeats {args.repeats}` on "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, device {rows[0]['device']}, "
        f"torch threads {args.threads}, {time.strftime('%Y-%m-%d')}.",
        "Tiny SD (64 px, 32x32x4 latents), batch 2, 4 demo images, AdamW, LoRA rank 4 / LyCORIS lokr; "
        f"{args.warmup} warm-up steps, then {args.steps} timed steps; steps/s = 1 / median step time, "
        f"median over {args.repeats} alternating rounds, each run its own process.",
        "",
        "| adapter | cached steps/s | uncached steps/s | speed-up | encoding ms/step (uncached) "
        "| cached peak MB | uncached peak MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in args.variants:
        cached, uncached = by[(variant, "cached")], by[(variant, "uncached")]
        lines.append(f"| {variant} | {cached['steps_per_s']:.2f} | {uncached['steps_per_s']:.2f} | "
                     f"{cached['steps_per_s'] / uncached['steps_per_s']:.2f}x | {uncached['encode_ms']:.1f} | "
                     f"{cached['peak_mb']:.0f} | "
                     f"{uncached['peak_mb']:.0f} |")
    lines += ["", "Peak memory is the process's maximum resident set on CPU (max allocated on CUDA): the "
              "uncached loop also holds the VAE and text encoder.",
              "", "The speed-up is bounded by (training step + encoding) / training step: caching removes "
              "exactly the encoding column, nothing else differs between the loops.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
