"""GPU suite: SDXL-architecture LoRA at 1024 px in bf16 on one CUDA GPU, in one script (under 8 minutes
on one H100/H200).

Measures, each in its own process (its own peak memory):
- dreamcore LoRA over a bf16 base: steady steps/s, peak VRAM (torch.cuda.max_memory_allocated) and
  achieved TFLOP/s (one training step's forward + backward FLOPs from torch.utils.flop_counter x steps/s);
- the same over an int8-quanto base (VRAM: what quantising the frozen UNet saves; steps/s);
- the peer, diffusers' train_dreambooth_lora_sdxl.py under accelerate with --mixed_precision bf16, same
  images, resolution, batch, rank, steps (when its copy is present; peak VRAM sampled with nvidia-smi).
dreamcore trains from its caches (built once, before the timed runs, by the ingest and cache stages).

--model tiny runs the same on the tiny SDXL (the test suite runs it on CPU so the script cannot rot; on
CPU "VRAM" is the process's peak RSS and bf16 is CPU autocast where the CPU has native bf16).

    .venv/bin/python benchmarks/gpu_suite.py                    # SDXL architecture; writes results/gpu_suite.md
    .venv/bin/python benchmarks/gpu_suite.py --model tiny --resolution 64 --steps 6 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import train_speed
import transformer_peer

RESULTS = Path(__file__).parent / "results" / "gpu_suite.md"
PEER_SCRIPT = transformer_peer.PEER_SCRIPTS["sdxl"]
# Suite variant -> train_speed.write_project's config variant (both bf16 mixed precision).
VARIANTS = {"bf16": "lora", "int8-quanto": "int8-quanto+lora"}
MODEL_DEFAULTS = {"sdxl": {"resolution": 1024, "batch": 1, "steps": 20, "warmup": 3},
                  "tiny": {"resolution": 64, "batch": 2, "steps": 6, "warmup": 2}}


def model_folder(model: str, models_dir: Path) -> Path:
    """The SDXL-architecture folder (random weights, written once) or the tiny SDXL."""
    if model == "tiny":
        from dreamcore.models import write_tiny_models

        return write_tiny_models(models_dir / "tiny")["sdxl"]
    from reference_models import write_architecture

    return write_architecture("sdxl", models_dir / "sdxl-architecture")


def prepare(work: Path, model: Path, settings: dict) -> dict[str, Path]:
    """Images, one config per suite variant (rank as set), and the caches they share, built here (the
    timed variants run in processes of their own afterwards)."""
    configs = train_speed.write_project(work, model, "sdxl", settings["resolution"], settings["batch"],
                                        settings["warmup"] + settings["steps"], precision="bf16")
    for path in configs.values():
        config = json.loads(path.read_text())
        path.write_text(json.dumps(config | {"--lora_rank": settings["rank"]}, indent=2))
    train_speed.build_caches(configs["lora"])
    return {variant: configs[name] for variant, name in VARIANTS.items()}


def run_variant(config: Path, variant: str, settings: dict) -> dict:
    """One dreamcore variant in this process: train_speed's cached loop with the FLOP count."""
    row = train_speed.run_one(config, variant, "cached", settings["steps"], settings["warmup"],
                              settings["threads"], count_flops=True)
    return row | {"tool": "dreamcore"}


def peer_command(peer_dir: Path, model: Path, images: Path, output: Path, settings: dict, cuda: bool) -> list[str]:
    """The peer's SDXL script with the suite's settings (warm-up steps included), on the GPU when there is one."""
    steps = settings["warmup"] + settings["steps"]
    return transformer_peer.peer_command(peer_dir, "sdxl", model, images, output,
                                         settings | {"steps": steps, "lr": 1e-4, "seed": 0, "precision": "bf16"},
                                         cpu=not cuda)


def run_peer(peer_dir: Path, model: Path, images: Path, work: Path, settings: dict, env: dict[str, str]) -> dict:
    """The peer once: steady steps/s from its tqdm bar and peak GPU memory (nvidia-smi) or RSS (CPU)."""
    import torch

    cuda = torch.cuda.is_available()
    command = peer_command(peer_dir, model, images, work / "peer-output", settings, cuda)
    sampler = GpuMemorySampler() if cuda else None
    measured = transformer_peer.run_processes([command], env, work / "peer")
    stamps = transformer_peer.step_times(measured["output"], transformer_peer.STEP_BARS["peer"])
    steps = settings["warmup"] + settings["steps"]
    return {"tool": "peer", "variant": "bf16", "precision": "bf16", "threads": settings["threads"],
            "steps_per_s": transformer_peer.steady_steps_per_s(stamps, steps, settings["warmup"] + 1),
            "peak_mb": sampler.stop() if sampler else measured["peak_mb"], "device": "cuda" if cuda else "cpu"}


class GpuMemorySampler:
    """The largest GPU memory in use (nvidia-smi, every 0.2 s) while a process runs: the peer is not ours
    to ask torch.cuda for its peak."""

    def __init__(self) -> None:
        self.peak_mb, self._running = 0.0, True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while self._running:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True).stdout.split()
            self.peak_mb = max([self.peak_mb, *(float(v) for v in out)])
            time.sleep(0.2)

    def stop(self) -> float:
        self._running = False
        self._thread.join()
        return self.peak_mb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(MODEL_DEFAULTS), default="sdxl")
    for name in ("resolution", "batch", "steps", "warmup"):
        parser.add_argument(f"--{name}", type=int, help=f"default: the model's ({MODEL_DEFAULTS})")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--peer-dir", type=Path, default=transformer_peer.DEFAULT_PEER_DIR)
    parser.add_argument("--torchvision-site", type=Path, default=Path(".dreamcore/benchmark-torchvision"))
    parser.add_argument("--models-dir", type=Path, default=Path(".dreamcore/benchmark-models"))
    parser.add_argument("--workdir", type=Path, help="default: a fresh temporary folder, removed afterwards")
    parser.add_argument("--no-write", action="store_true", help="print the table, do not write the results file")
    parser.add_argument("--one", nargs=2, metavar=("CONFIG", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_variant(Path(args.one[0]), args.one[1], json.loads(args.settings))))
        return 0
    settings = {name: getattr(args, name) or MODEL_DEFAULTS[args.model][name]
                for name in ("resolution", "batch", "steps", "warmup")} | {"rank": args.rank, "threads": args.threads}
    started = time.perf_counter()
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="dreamcore-gpu-suite-"))).resolve()
    model = model_folder(args.model, args.models_dir.resolve())
    configs = prepare(work, model, settings)
    rows = [json.loads(_self(["--one", str(configs[v]), v, "--settings", json.dumps(settings)]).splitlines()[-1])
            for v in args.variants]
    for row in rows:
        print(json.dumps(row), flush=True)
    if (args.peer_dir / PEER_SCRIPT).is_file():
        shim = transformer_peer.torchvision_shim(args.torchvision_site.resolve(), work / "shim")
        env = transformer_peer.tool_environment(args.threads, [shim, transformer_peer.REPOSITORY])
        rows.append(run_peer(args.peer_dir, model, work / "sources", work, settings, env))
        print(json.dumps(rows[-1]), flush=True)
    else:
        print(f"gpu_suite: no {PEER_SCRIPT} in {args.peer_dir}: the peer is left out")
    table = _table(rows, args, settings, time.perf_counter() - started)
    print(table)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(table)
    return 0


def _self(arguments: list[str]) -> str:
    """This script in a fresh process (its own peak memory); stdout."""
    done = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"gpu_suite {' '.join(arguments[:2])} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return done.stdout


def _table(rows: list[dict], args, settings: dict, seconds: float) -> str:
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({platform.machine()})"
    memory = "peak VRAM MB" if torch.cuda.is_available() else "peak RSS MB"
    lines = [
        f"# GPU suite: {args.model} LoRA at {settings['resolution']} px, bf16",
        "",
        (f"`.venv/bin/python benchmarks/gpu_suite.py --model {args.model} --resolution {settings['resolution']} "
         f"--batch {settings['batch']} --steps {settings['steps']} --warmup {settings['warmup']} --rank {args.rank}` "
         f"on {device}, {time.strftime('%Y-%m-%d')}, {seconds / 60:.1f} minutes in all. steps/s = 1 / median step "
         f"time after {settings['warmup']} warm-up steps; TFLOP/s = one step's forward + backward FLOPs "
         "(torch.utils.flop_counter) x steps/s."),
        "",
        f"| tool | base | steps/s | {memory} | TFLOP/step | TFLOP/s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        flops = (f"{row['step_tflop']:.2f} | {row['tflop_per_s']:.1f}" if "step_tflop" in row else "- | -")
        lines.append(f"| {row['tool']} | {row['variant']} | {row['steps_per_s']:.3g} | {row['peak_mb']:.0f} | {flops} |")
    peers = [r for r in rows if r["tool"] == "peer"]
    ours = [r for r in rows if r["tool"] == "dreamcore" and r["variant"] == "bf16"]
    if peers and ours:
        lines += ["", f"dreamcore / peer at bf16: steps/s {ours[0]['steps_per_s'] / peers[0]['steps_per_s']:.2f}x, "
                      f"memory {ours[0]['peak_mb'] / peers[0]['peak_mb']:.2f}x."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
