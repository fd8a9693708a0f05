"""Benchmark: LoRA training at `mixed_precision: bf16` against fp32 on this machine's CPU (steps/s, peak
memory and the loss curves of both).

Both precisions train the same model from the same committed caches (built once; the caches do not depend
on mixed_precision) with the same seed, so they draw the same batches, noise and timesteps: the two loss
curves differ only by bf16 rounding. Each run is `train_speed.py --one` (the train stage's Trainer over
the cached batches) in its own process, the precisions alternate (the order swaps every round) for
--rounds, and steps/s is 1 / the median step time over the timed steps.

bf16 autocasts only where train.precision finds AMX (see there); elsewhere the bf16 run trains in fp32 and
the table says so. `--onednn-max-isa AVX512_CORE_BF16` caps oneDNN below AMX on an AMX machine, to measure
what a CPU with AVX512-BF16 alone would get from autocast (which training would then decline).

    .venv/bin/python benchmarks/cpu_bf16.py                          # SD 1.5 architecture, 512 px, ~10 minutes
    .venv/bin/python benchmarks/cpu_bf16.py --model tiny --steps 30  # the tiny SD, 64 px, seconds
    .venv/bin/python benchmarks/cpu_bf16.py --onednn-max-isa AVX512_CORE_BF16   # writes cpu_bf16_avx512_core_bf16.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import train_speed

RESULTS = Path(__file__).parent / "results"
PRECISIONS = ("no", "bf16")
MODEL_DEFAULTS = {"tiny": {"resolution": 64, "batch": 2, "steps": 30, "warmup": 3},
                  "sd15": {"resolution": 512, "batch": 1, "steps": 8, "warmup": 2}}
GOAL = 1.5  # bf16 steps/s at least this many times fp32's (issue 18)


def write_configs(work: Path, model: str, models_dir: Path, resolution: int, batch: int, steps: int) -> dict[str, Path]:
    """One LoRA config per precision over one storage root (so one set of caches), caches built."""
    folder, family = train_speed.model_folder(model, models_dir)
    configs = {"no": train_speed.write_project(work, folder, family, resolution, batch, steps, "no")["lora"]}
    bf16 = json.loads(configs["no"].read_text()) | {"--mixed_precision": "bf16"}
    configs["bf16"] = work / "config-lora-bf16.json"
    configs["bf16"].write_text(json.dumps(bf16, indent=2))
    train_speed._subprocess(["--build-caches", str(configs["no"])])
    return configs


def measure(configs: dict[str, Path], rounds: int, steps: int, warmup: int, threads: int) -> list[dict]:
    """Every run's row (train_speed.run_one's, with the losses of each step), precisions alternating."""
    rows = []
    for index in range(rounds):
        for precision in PRECISIONS if index % 2 == 0 else PRECISIONS[::-1]:
            output = train_speed._subprocess(["--one", str(configs[precision]), "lora", "cached", "--steps",
                                              str(steps), "--warmup", str(warmup), "--threads", str(threads)])
            row = json.loads(output.strip().splitlines()[-1]) | {"asked": precision, "load": os.getloadavg()[0]}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "losses"}), flush=True)
    return rows


def summary(rows: list[dict]) -> dict[str, dict]:
    """Per asked precision: median steps/s and peak MB over rounds, the precision it ran at, its losses
    (the first round's: every round draws the same batches and noise)."""
    by = {}
    for precision in PRECISIONS:
        runs = [r for r in rows if r["asked"] == precision]
        by[precision] = {"steps_per_s": statistics.median(r["steps_per_s"] for r in runs),
                         "peak_mb": statistics.median(r["peak_mb"] for r in runs),
                         "ran_as": runs[0]["precision"], "losses": runs[0]["losses"]}
    return by


def loss_gap(fp32: list[float], bf16: list[float]) -> dict[str, float]:
    """How far the bf16 loss curve is from fp32's: mean and largest |difference| relative to the fp32 loss."""
    relative = [abs(b - f) / max(abs(f), 1e-12) for f, b in zip(fp32, bf16, strict=True)]
    return {"mean_relative": statistics.fmean(relative), "max_relative": max(relative)}


def table(rows: list[dict], args: argparse.Namespace) -> str:
    isa = f" with oneDNN capped at {args.onednn_max_isa}" if args.onednn_max_isa else ""
    by = summary(rows)
    fp32, bf16 = by["no"], by["bf16"]
    ratio = bf16["steps_per_s"] / fp32["steps_per_s"]
    verdict = "met" if ratio >= GOAL else "NOT met"
    gap = loss_gap(fp32["losses"], bf16["losses"])
    loads = [r["load"] for r in rows]
    lines = [
        f"# bf16 on CPU: autocast against fp32, LoRA ({args.model})",
        "",
        f"`.venv/bin/python benchmarks/cpu_bf16.py --model {args.model} --resolution {args.resolution} "
        f"--batch {args.batch} --steps {args.steps} --warmup {args.warmup} --threads {args.threads} "
        f"--rounds {args.rounds}{' --onednn-max-isa ' + args.onednn_max_isa if args.onednn_max_isa else ''}` "
        f"on {platform.machine()}{isa}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; "
        f"1-minute load average after each run {min(loads):.1f}-{max(loads):.1f}.",
        f"LoRA rank 4, AdamW, batch {args.batch} at {args.resolution} px from the committed caches, seed 0; "
        f"{args.warmup} warm-up steps, then {args.steps} timed steps; steps/s = 1 / median step time, median "
        f"over {args.rounds} alternating round(s), each run its own process. bf16 ran as "
        f"`{bf16['ran_as']}` (accelerate's mixed precision; `no` means train.precision declined bf16 on this CPU).",
        "",
        "| precision | steps/s | s/step | peak RSS MB |",
        "|---|---|---|---|",
        f"| fp32 (`no`) | {fp32['steps_per_s']:.3g} | {1 / fp32['steps_per_s']:.2f} | {fp32['peak_mb']:,.0f} |",
        f"| bf16 autocast | {bf16['steps_per_s']:.3g} | {1 / bf16['steps_per_s']:.2f} | {bf16['peak_mb']:,.0f} |",
        f"| bf16 / fp32 | **{ratio:.2f}x** (goal >= {GOAL}x: {verdict}) | | {bf16['peak_mb'] / fp32['peak_mb']:.2f}x |",
        "",
        f"Loss curves (same batches, noise and timesteps): bf16 differs from fp32 by {100 * gap['mean_relative']:.2f}% "
        f"of the fp32 loss on average, {100 * gap['max_relative']:.2f}% at most.",
        "",
        "| step | fp32 loss | bf16 loss |",
        "|---|---|---|",
    ]
    lines += [f"| {step} | {f:.5f} | {b:.5f} |"
              for step, (f, b) in enumerate(zip(fp32["losses"], bf16["losses"], strict=True), start=1)]
    lines += ["", "Every run (in the order they ran):", "", "| precision | ran as | steps/s | peak MB | load |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['asked']} | {r['precision']} | {r['steps_per_s']:.3g} | {r['peak_mb']:,.0f} | {r['load']:.1f} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def results_file(model: str, isa: str | None = None) -> Path:
    name = "cpu_bf16" + ("" if model == "sd15" else f"_{Path(model).name}") + (f"_{isa.lower()}" if isa else "")
    return RESULTS / f"{name}.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sd15", help="sd15 (default), tiny or a local SD 1.x/2.x diffusers folder")
    for name in ("resolution", "batch", "steps", "warmup"):
        parser.add_argument(f"--{name}", type=int, help=f"default: the model's ({MODEL_DEFAULTS})")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads of each run")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--onednn-max-isa", metavar="ISA",
                        help="ONEDNN_MAX_CPU_ISA for both runs (e.g. AVX512_CORE_BF16)")
    parser.add_argument("--models-dir", type=Path, default=Path(".dreamcore/benchmark-models"))
    parser.add_argument("--workdir", type=Path, help="default: a fresh temporary folder, removed afterwards")
    parser.add_argument("--no-write", action="store_true", help="print the table, do not write the results file")
    args = parser.parse_args(argv)
    for name, value in MODEL_DEFAULTS.get(args.model, MODEL_DEFAULTS["sd15"]).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.onednn_max_isa:
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.onednn_max_isa  # inherited by every run's process
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dreamcore-cpu-bf16-"))
    try:
        configs = write_configs(work.resolve(), args.model, args.models_dir.resolve(), args.resolution, args.batch,
                                args.warmup + args.steps)
        rows = measure(configs, args.rounds, args.steps, args.warmup, args.threads)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    text = table(rows, args)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        results_file(args.model, args.onednn_max_isa).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
