"""Benchmark: training steps/s from the caches against re-encoding every step, and peak memory.

Same model, the same square source images and captions, the same batch and resolution, the same
dreamcore Trainer step (noise, UNet forward/backward, AdamW). The only difference:

- cached:   batches come from the run's Parquet caches, built once by the cache stage (ingest and
            cache run before the timed runs, in their own process) and read by the train stage's
            CachedBatchSource, as `dreamcore run` does;
- uncached: every batch decodes its images from disk, resizes them, runs the VAE encoder (sampling
            the latent distribution) and the text encoder, as diffusers' DreamBooth example does
            without caching; the VAE and text encoder stay loaded next to the UNet.

Models (--model):
- tiny: the tiny random-weight SD of the tests and demo (64 px, 32x32x4 latents);
- sd15: Stable Diffusion 1.5's architecture with random weights (benchmarks/reference_models.py;
        written once under --models-dir, ~4.3 GB), 512 px: the proportions of a real model;
- a folder: any local SD 1.x/2.x diffusers folder (a real checkpoint), at --resolution.

Each (variant, loop) run is its own process so peak memory (max RSS on CPU, max allocated on
CUDA) belongs to that run alone. Speed is 1 / the median step time (robust to other processes
briefly taking the cores), and the cached and uncached runs alternate over --repeats rounds; the
table shows the median over rounds. The FLOP ceiling of the speed-up is benchmarks/caching_ceiling.py.

    .venv/bin/python benchmarks/train_speed.py                       # tiny, all variants, ~3 minutes
    .venv/bin/python benchmarks/train_speed.py --model sd15          # ~25 minutes on 2 CPU cores
    .venv/bin/python benchmarks/train_speed.py --model /models/sd15 --resolution 512 --variants lora
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

VARIANTS = {
    "lora": {"--model_type": "lora"},
    "lycoris": {"--model_type": "lora", "--lora_type": "lycoris"},
    "full": {"--model_type": "full"},
    "int8-quanto+lora": {"--model_type": "lora", "--base_model_precision": "int8-quanto"},
}
LYCORIS_SPEC = {"algo": "lokr", "multiplier": 1.0, "linear_dim": 10000, "linear_alpha": 1, "factor": 4,
                "apply_preset": {"target_module": ["Attention", "FeedForward"]}}
# Per model: the native resolution and a run length that fits a CPU session.
MODEL_DEFAULTS = {
    "tiny": {"resolution": 64, "batch": 2, "steps": 30, "warmup": 3, "repeats": 3, "threads": 1},
    "sd15": {"resolution": 512, "batch": 1, "steps": 4, "warmup": 1, "repeats": 1, "threads": os.cpu_count()},
}
SOURCE_IMAGES = 4
RESULTS = Path(__file__).parent / "results"


# ---------------------------------------------------------------- the uncached loop


class EncodingBatchSource:
    """Batches made the uncached way: decode, resize, VAE-encode and text-encode on every step."""

    def __init__(self, pipe, image_paths, prompts, batch_size: int, resolution: int, device, seed: int = 0) -> None:
        import torch

        self.pipe, self.image_paths, self.prompts = pipe, list(image_paths), list(prompts)
        self.batch_size, self.resolution, self.device = batch_size, resolution, device
        self.generator = torch.Generator().manual_seed(seed)
        self.position = 0
        self.encode_seconds: list[float] = []  # per batch: what the caches save

    def __iter__(self):
        import numpy as np
        import torch
        from PIL import Image

        from dreamcore.cache.batch import TrainingBatch
        from dreamcore.train.memory import centre_square

        vae = self.pipe.vae
        while True:
            index = [(self.position + i) % len(self.image_paths) for i in range(self.batch_size)]
            self.position += self.batch_size
            started = time.perf_counter()
            with torch.no_grad():
                images = [Image.open(self.image_paths[i]).convert("RGB") for i in index]
                pixels = [centre_square(image, self.resolution)[0] for image in images]
                arrays = np.stack([np.asarray(p, dtype=np.float32) for p in pixels])
                tensor = torch.from_numpy(arrays).permute(0, 3, 1, 2) / 127.5 - 1.0
                tensor = tensor.to(self.device, vae.dtype)
                latents = vae.encode(tensor).latent_dist.sample(self.generator) * vae.config.scaling_factor
                embeds = self.pipe.encode_prompt([self.prompts[i] for i in index], self.device, 1, False)[0]
            if str(self.device).startswith("cuda"):
                torch.cuda.synchronize()
            self.encode_seconds.append(time.perf_counter() - started)
            yield TrainingBatch(latents=latents, prompt_embeds=embeds)

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, state) -> None:
        self.position = state["position"]


# ---------------------------------------------------------------- the project both loops train on


def model_folder(model: str, models_dir: Path) -> tuple[Path, str]:
    """The diffusers folder of --model and its family (sd1 or sd2): built (once) for tiny and sd15,
    taken as it is otherwise."""
    if model == "tiny":
        from dreamcore.models import write_tiny_models

        return write_tiny_models(models_dir / "tiny")["sd"], "sd1"
    if model == "sd15":
        from reference_models import write_sd15_architecture

        return write_sd15_architecture(models_dir / "sd15-architecture"), "sd1"
    from dreamcore.models import detect_family

    folder = Path(model)
    if not (folder / "model_index.json").is_file():
        raise SystemExit(f"--model {model}: not tiny, sd15 or a diffusers model folder (no model_index.json)")
    family = detect_family(folder)
    if family.pooled_text or family.time_ids is not None:
        raise SystemExit(f"--model {model}: a {family.name} folder; the uncached loop encodes for "
                         "SD 1.x/2.x only (no pooled embeddings or time ids)")
    return folder, family.name


def write_project(work: Path, model: Path, family: str, resolution: int, batch: int, steps: int,
                  precision: str = "no") -> dict[str, Path]:
    """Square source images with captions, and one config.json per variant sharing one storage root;
    `precision` is their mixed_precision (bf16 autocasts on CUDA and on CPUs with native bf16)."""
    from PIL import Image

    from dreamcore.data.demo import write_demo_dataset
    from dreamcore.train.memory import centre_square

    demo = write_demo_dataset(work / "demo", n_images=SOURCE_IMAGES, include_masks=False)
    sources = work / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    for index, (path, caption) in enumerate(zip(demo.image_paths, demo.captions, strict=True)):
        square, _ = centre_square(Image.open(path).convert("RGB"), resolution)
        square.save(sources / f"image_{index:02d}.png")
        (sources / f"image_{index:02d}.txt").write_text(caption)
    (work / "lycoris.json").write_text(json.dumps(LYCORIS_SPEC))
    datasets = [
        {"id": "subject", "type": "local", "instance_data_dir": str(sources), "caption_strategy": "textfile",
         "resolution": resolution, "resolution_type": "pixel", "minimum_image_size": resolution},
        {"id": "text-embeds", "type": "local", "dataset_type": "text_embeds", "default": True},
    ]
    (work / "multidatabackend.json").write_text(json.dumps(datasets, indent=2))
    model_family = {"sd1": "sd1x", "sd2": "sd2x", "sdxl": "sdxl"}[family]
    configs = {}
    for variant, options in VARIANTS.items():
        config = {"--model_family": model_family, "--pretrained_model_name_or_path": str(model), "--lora_rank": 4,
                  "--optimizer": "adamw", "--mixed_precision": precision, "--max_train_steps": steps,
                  "--checkpointing_steps": 1_000_000, "--train_batch_size": batch, "--seed": 0,
                  "--eval_dataset_fraction": 0, "--storage_root": str(work / "artifacts"),
                  "--output_dir": str(work / "output" / variant), "--data_backend_config": "multidatabackend.json",
                  **options}
        if variant == "lycoris":
            config["--lycoris_config"] = str(work / "lycoris.json")
        configs[variant] = work / f"config-{variant}.json"
        configs[variant].write_text(json.dumps(config, indent=2))
    return configs


def build_caches(config_path: Path) -> None:
    """Ingest and cache once (the caches do not depend on the adapter), as `dreamcore run --stage cache`."""
    from dreamcore.config import load_run_config
    from dreamcore.pipeline import run_stage_locally

    config = load_run_config(config_path)
    run_stage_locally(config, "ingest")
    run_stage_locally(config, "cache")


# ---------------------------------------------------------------- one timed run


def run_one(config_path: Path, variant: str, loop: str, steps: int, warmup: int, threads: int,
            count_flops: bool = False) -> dict:
    """Train `warmup + steps` steps of one variant with one loop; steps/s over the timed steps. With
    count_flops, also the FLOPs of one training step (forward + backward, torch's FLOP counter) and the
    rate they ran at."""
    import torch

    from dreamcore.config import load_run_config
    from dreamcore.storage import ArtifactStore
    from dreamcore.train.trainer import Trainer, make_accelerator

    torch.set_num_threads(threads)
    config = load_run_config(config_path)
    training = config.training
    accelerator = make_accelerator(training)
    store = ArtifactStore(training.resolved_storage_root)
    source = cached_source(config, store) if loop == "cached" else uncached_source(config, accelerator)
    folder = f"benchmark/{variant}-{loop}-{os.getpid()}"
    # No regularisation data here, so a full fine-tune needs no frozen reference copy (as in the train stage).
    trainer = Trainer(training, store, folder, source, accelerator, keep_reference=False,
                      show_progress=False).setup()
    stamps = {}
    trainer.on_step = lambda entry: stamps.__setitem__(entry["step"], _now(accelerator.device))
    trainer.train()
    peak_mb = _peak_mb()  # before the FLOP count, which allocates as one more step does
    store.remove(folder)  # checkpoints of a benchmark are not kept
    durations = sorted(stamps[s + 1] - stamps[s] for s in range(warmup, warmup + steps))
    encode = getattr(source, "encode_seconds", [0.0])[warmup:] or [0.0]
    row = {"variant": variant, "loop": loop, "steps_per_s": 1.0 / statistics.median(durations),
           "encode_ms": 1000 * statistics.median(encode),
           "mean_steps_per_s": steps / (stamps[warmup + steps] - stamps[warmup]), "peak_mb": peak_mb,
           "device": str(accelerator.device), "threads": threads, "precision": accelerator.mixed_precision,
           "losses": [entry["loss"] for entry in trainer.history]}
    if count_flops:
        row["step_tflop"] = step_flops(trainer) / 1e12
        row["tflop_per_s"] = row["step_tflop"] * row["steps_per_s"]
    return row


def step_flops(trainer) -> int:
    """FLOPs of one training step's forward and backward (the optimiser's few are left out)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        trainer.accelerator.backward(trainer.loss(next(iter(trainer.batches))).total)
    trainer.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def cached_source(config, store):
    """The train stage's own BatchSource over the committed caches (no VAE or text encoder is loaded)."""
    from dreamcore.cache.batches import open_batch_source
    from dreamcore.cache.stages import run_cache
    from dreamcore.storage import StageResult

    caches = run_cache(config, store)  # committed already: returns them without work
    vae = {dataset_id: StageResult.model_validate(r) for dataset_id, r in caches["vae_cache"].items()}
    return open_batch_source(store, config, vae, StageResult.model_validate(caches["text_cache"]))


def uncached_source(config, accelerator) -> EncodingBatchSource:
    import torch

    from dreamcore.models import load_pipeline

    training = config.training
    pipe = load_pipeline(training.pretrained_model_name_or_path, components={"unet": None})  # the trainer loads it
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    pipe.vae.to(accelerator.device, dtype)  # as the diffusers example: encoders in the mixed-precision dtype
    pipe.text_encoder.to(accelerator.device, dtype)
    sources = Path(config.dataset("subject").instance_data_dir)
    images = sorted(sources.glob("*.png"))
    captions = [path.with_suffix(".txt").read_text() for path in images]
    resolution = int(config.dataset("subject").resolution)
    return EncodingBatchSource(pipe, images, captions, training.train_batch_size, resolution, accelerator.device)


def _now(device) -> float:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter()


def _peak_mb() -> float:
    import torch

    from dreamcore.pipeline.local import peak_rss_mb

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return peak_rss_mb()


# ---------------------------------------------------------------- the whole benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny, sd15 or a local SD 1.x/2.x diffusers folder")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    for name in ("resolution", "batch", "steps", "warmup", "threads", "repeats"):
        parser.add_argument(f"--{name}", type=int, help=f"default: the model's ({MODEL_DEFAULTS})")
    parser.add_argument("--precision", choices=["no", "bf16"], default="no",
                        help="mixed_precision of the runs (results file gets a _bf16 suffix for bf16)")
    parser.add_argument("--models-dir", type=Path, default=Path(".dreamcore/benchmark-models"),
                        help="where the tiny and sd15 folders are written (reused when complete)")
    parser.add_argument("--workdir", type=Path, help="default: a fresh temporary folder, removed afterwards")
    parser.add_argument("--build-caches", type=Path, metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--one", nargs=3, metavar=("CONFIG", "VARIANT", "LOOP"), help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print the table, do not write the results file")
    args = parser.parse_args()
    defaults = MODEL_DEFAULTS.get(args.model, MODEL_DEFAULTS["sd15"])
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.build_caches:
        build_caches(args.build_caches)
        return
    if args.one:
        config, variant, loop = args.one
        print(json.dumps(run_one(Path(config), variant, loop, args.steps, args.warmup, args.threads)))
        return

    import tempfile

    work = args.workdir or Path(tempfile.mkdtemp(prefix="dreamcore-train-speed-"))
    model, family = model_folder(args.model, args.models_dir.resolve())
    configs = write_project(work, model, family, args.resolution, args.batch, args.warmup + args.steps,
                            args.precision)
    _subprocess(["--build-caches", str(configs["lora"])])
    rows = []
    for _ in range(args.repeats):
        for variant in args.variants:
            for loop in ("cached", "uncached"):
                output = _subprocess(["--one", str(configs[variant]), variant, loop, "--steps", str(args.steps),
                                      "--warmup", str(args.warmup), "--threads", str(args.threads)])
                rows.append(json.loads(output.strip().splitlines()[-1]))
                print(rows[-1], flush=True)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    table = _table(rows, args)
    print(table)
    if not args.no_write:
        name = "train_speed" if args.model == "tiny" else f"train_speed_{Path(args.model).name}"
        name += "_bf16.md" if args.precision == "bf16" else ".md"
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / name).write_text(table)


def _subprocess(arguments: list[str]) -> str:
    """This script in a fresh process (its own peak memory); stdout."""
    return subprocess.run([sys.executable, __file__, *arguments], check=True, capture_output=True, text=True).stdout


def _table(rows: list[dict], args) -> str:
    by = {}
    for key in {(r["variant"], r["loop"]) for r in rows}:
        runs = [r for r in rows if (r["variant"], r["loop"]) == key]
        by[key] = {"steps_per_s": statistics.median(r["steps_per_s"] for r in runs),
                   "peak_mb": statistics.median(r["peak_mb"] for r in runs),
                   "encode_ms": statistics.median(r["encode_ms"] for r in runs)}
    command = (f"`.venv/bin/python benchmarks/train_speed.py --model {args.model} --resolution {args.resolution} "
               f"--batch {args.batch} --steps {args.steps} --warmup {args.warmup} --threads {args.threads} "
               f"--repeats {args.repeats} --precision {args.precision}`")
    lines = [
        f"# Training speed: cached batches vs encoding every step ({args.model})",
        "",
        f"{command} on {platform.processor() or platform.machine()}, {os.cpu_count()} cores, device "
        f"{rows[0]['device']}, {time.strftime('%Y-%m-%d')}.",
        f"Batch {args.batch} at {args.resolution} px, mixed precision {args.precision}, {SOURCE_IMAGES} square "
        "source images, AdamW, LoRA rank 4 / "
        f"LyCORIS lokr; {args.warmup} warm-up steps, then {args.steps} timed steps; steps/s = 1 / median step "
        f"time, median over {args.repeats} alternating round(s), each run its own process.",
        "",
        "| variant | cached steps/s | uncached steps/s | speed-up | encoding ms/step (uncached) "
        "| cached peak MB | uncached peak MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in args.variants:
        cached, uncached = by[(variant, "cached")], by[(variant, "uncached")]
        lines.append(f"| {variant} | {cached['steps_per_s']:.3g} | {uncached['steps_per_s']:.3g} | "
                     f"{cached['steps_per_s'] / uncached['steps_per_s']:.2f}x | {uncached['encode_ms']:.1f} | "
                     f"{cached['peak_mb']:.0f} | {uncached['peak_mb']:.0f} |")
    lines += ["", "Peak memory is the process's maximum resident set on CPU (max allocated on CUDA): the "
              "uncached loop also holds the VAE and text encoder and their activations.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
